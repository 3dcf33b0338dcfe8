"""Training arms over seeds, as the decision rule in docs/TRAINING.md reads them (run in .venv-train):

    python -m scripts.bench.arms build/arms [--markdown build/arms/arms.md]

Each `NAME-sSEED` folder is one exported run of scripts/train_arms.sh. Per arm: the seeds, training
(+ export) minutes, report-half EER per condition as mean ± sd over the seeds (the bundle as the
device scores it), and the calibration half's pooled EER and minDCF(0.01) of single utterances and
the pooled EER of sessions of 3 (model.json's calibration report): the numbers an arm is chosen on.
"""

from __future__ import annotations

import argparse
import json
import re
from collections import defaultdict
from pathlib import Path

import numpy as np

REPORT = ("clean", "noisy", "short", "words", "single", "channel")


def run_row(folder: Path) -> dict:
    meta = json.loads((folder / "model.json").read_text())
    report = meta["calibration_report"]
    chosen = report["per_scoring"][report["chosen"]]
    per = json.loads((folder / "generalisation.json").read_text())["systems"]["project (cosine)"]
    seconds = folder / "train_export_seconds"
    return {"report": {c: per[c]["eer"] for c in REPORT if c in per},
            "calib_eer": chosen["eer"], "calib_min_dcf": chosen["min_dcf_p01"],
            "calib_eer_3": report["by_utterances"]["3"]["eer"],
            "minutes": float(seconds.read_text()) / 60 if seconds.exists() else float("nan")}


def arms(root: Path) -> dict[str, dict[int, dict]]:
    out: dict[str, dict[int, dict]] = defaultdict(dict)
    for folder in sorted(root.iterdir()):
        m = re.fullmatch(r"(.+)-s(\d+)", folder.name)
        if m and (folder / "generalisation.json").exists():
            out[m.group(1)][int(m.group(2))] = run_row(folder)
    return dict(out)


def mean_sd(values: list[float]) -> str:
    v = np.asarray(values, dtype=float)
    return f"{v.mean():.2f} ± {v.std(ddof=1):.2f}" if v.size > 1 else f"{v.mean():.2f}"


def markdown(table: dict[str, dict[int, dict]]) -> str:
    lines = ["| arm | seeds | train + export min | " + " | ".join(f"report {c}" for c in REPORT)
             + " | calib pooled EER | calib minDCF(0.01) | calib EER, 3 utterances |",
             "|---|---|---|" + "---|" * (len(REPORT) + 3)]
    for name, runs in table.items():
        rows = list(runs.values())
        cells = [mean_sd([r["report"][c] for r in rows if c in r["report"]]) for c in REPORT]
        lines.append(f"| {name} | {', '.join(map(str, runs))} | {mean_sd([r['minutes'] for r in rows])} | "
                     + " | ".join(cells) + f" | {mean_sd([r['calib_eer'] for r in rows])} | "
                     f"{mean_sd([r['calib_min_dcf'] for r in rows])} | {mean_sd([r['calib_eer_3'] for r in rows])} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("root", type=Path)
    p.add_argument("--markdown", type=Path)
    a = p.parse_args(argv)
    text = markdown(arms(a.root))
    if a.markdown:
        a.markdown.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
