"""python -m train.report --run RUN --bundle BUNDLE: collect the evaluation JSONs of a run
(Keras, float) and its exported bundle (TFLite, device path) into BUNDLE/metrics.json and a
markdown table."""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

CONDITIONS = ("clean", "noisy", "short")


def collect(run: Path, bundle: Path) -> dict:
    out = {"conditions": {}}
    for cond in CONDITIONS:
        row = {}
        for kind, folder in (("keras_float32", run), ("tflite", bundle)):
            path = folder / "eval" / f"{cond}.json"
            if path.exists():
                r = json.loads(path.read_text())
                row[kind] = {k: r.get(k) for k in ("eer", "min_dcf_p01", "min_dcf_p05", "threshold_eer", "n_target",
                                                   "n_nontarget", "n_padded")}
                if "asnorm" in r:
                    row[kind + "_asnorm"] = {k: r["asnorm"][k] for k in ("eer", "min_dcf_p01", "min_dcf_p05")}
        out["conditions"][cond] = row
    out["training"] = json.loads((run / "metrics.json").read_text()) if (run / "metrics.json").exists() else {}
    meta = json.loads((bundle / "model.json").read_text())
    out["model"] = {"quantization": meta["quantization"], "size_kb": round(meta["size_bytes"] / 1024, 1),
                    "thresholds": meta["thresholds"]}
    return out


def table(metrics: dict) -> str:
    lines = ["| condition | model | EER % | minDCF(0.01) | AS-norm EER % | AS-norm minDCF(0.01) |",
             "|---|---|---|---|---|---|"]
    for cond, row in metrics["conditions"].items():
        for kind in ("keras_float32", "tflite"):
            if kind in row:
                a = row.get(kind + "_asnorm", {})
                lines.append(f"| {cond} | {kind} | {row[kind]['eer']:.2f} | {row[kind]['min_dcf_p01']:.3f} | "
                             f"{a.get('eer', float('nan')):.2f} | {a.get('min_dcf_p01', float('nan')):.3f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m train.report", description=__doc__)
    p.add_argument("--run", required=True)
    p.add_argument("--bundle", required=True)
    a = p.parse_args(argv)
    run, bundle = Path(a.run), Path(a.bundle)
    metrics = collect(run, bundle)
    (bundle / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    det = bundle / "eval" / "plots-clean" / "det.png"
    if det.exists():
        shutil.copy(det, bundle / "det.png")
    text = table(metrics)
    (bundle / "metrics.md").write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
