"""python -m export.table BUNDLE...: the per-mode table (size, ops, parity, EER, latency per
runtime) from what each export measured and wrote into model.json."""

from __future__ import annotations

import json
import sys
from pathlib import Path

RUNTIMES = ("ai_edge_litert", "tflite_runtime")


def rows(bundle: Path) -> list[str]:
    meta = json.loads((bundle / "model.json").read_text())
    ops = ", ".join(f"{o['name']} v{o['version']}" for o in meta["ops"])
    out = []
    for rt in RUNTIMES:
        c = meta.get("checks", {}).get(rt)
        if not c:
            continue
        t = c["trials"]
        lat = c["latency_ms_per_window"]
        out.append(f"| {meta['quantization']} | {meta['size_bytes'] / 1024:.0f} | {rt} {c['version']} | "
                   f"{c['parity_median']:.4f} / {c['parity_min']:.4f} | "
                   + " | ".join(f"{t[k]['eer']:.2f} ({t[k]['asnorm_eer']:.2f})" for k in ("clean", "noisy", "short"))
                   + f" | {lat['threads_1']:.2f} / {lat['threads_2']:.2f} | {ops} |")
    return out


def table(bundles: list[Path]) -> str:
    head = ["| mode | KB | runtime | parity median / min | EER % clean (AS-norm) | noisy | short | "
            "ms/window 1 thr / 2 thr | ops |", "|---|---|---|---|---|---|---|---|---|"]
    return "\n".join(head + [r for b in bundles for r in rows(b)])


if __name__ == "__main__":
    print(table([Path(p) for p in sys.argv[1:]]))
