"""Training throughput alone and on N local workers, through the real entry points (`python -m train`
without TF_CONFIG, then scripts/train_distributed.sh --workers N).

    python -m scripts.bench.training_scale --data data/corpus --voices 40 --workers 1,2 \
        --out build/bench/training_scale.json

Every count trains the same model on the same voices with the same global batch, steps and seed. The
rate leaves out the first epoch (tracing); the augmentation bank is timed apart (each worker builds
its share). Local workers share this machine's cores: on a 2-core machine this checks correctness and
overhead, not the speed-up a cluster of machines gives.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import subprocess
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TRAIN_PY = REPO / ".venv-train" / "bin" / "python"


def voices_splits(data: Path, voices: int, into: Path, val_voices: int = 4) -> Path:
    """A splits folder training on the first `voices` recorded (MBROLA) training voices and validating
    on a few validation voices (validation runs on the chief alone: it is not what is measured)."""
    train = [s for s in (data / "splits" / "train.txt").read_text().split() if s.startswith("mb-")][:voices]
    into.mkdir(parents=True, exist_ok=True)
    (into / "train.txt").write_text("\n".join(train) + "\n")
    (into / "val.txt").write_text("\n".join((data / "splits" / "val.txt").read_text().split()[:val_voices]) + "\n")
    return into


def train_once(workers: int, flags: list[str], out: Path) -> dict:
    cmd = ([str(TRAIN_PY), "-m", "train"] if workers == 1 else
           ["bash", str(REPO / "scripts" / "train_distributed.sh"), "--workers", str(workers)])
    began = time.time()
    env = {**os.environ, "PYTHONPATH": str(REPO), "TF_CONFIG": ""}
    proc = subprocess.run([*cmd, *flags, "--out", str(out)], cwd=REPO, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{workers} worker(s) failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}")
    with open(out / "log.csv") as f:
        rows = list(csv.DictReader(f))
    metrics = json.loads((out / "metrics.json").read_text())
    steady = [float(r["examples_per_s"]) for r in rows[1:]] or [float(rows[0]["examples_per_s"])]
    return {"workers": workers, "examples_per_s": round(sum(steady) / len(steady), 1),
            "bank_seconds": metrics["bank_seconds"], "wall_seconds": round(time.time() - began, 1),
            "final_loss": float(rows[-1]["loss"]), "epochs": len(rows)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default="data/corpus", help="corpus with splits/train.txt and splits/val.txt")
    p.add_argument("--voices", type=int, default=40, help="recorded training voices to train on")
    p.add_argument("--workers", default="1,2", help="worker counts to compare")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--batch", type=int, default=64, help="global batch")
    p.add_argument("--out", default="build/bench/training_scale.json")
    a = p.parse_args(argv)
    data = Path(a.data).resolve()
    with tempfile.TemporaryDirectory() as tmp:
        splits = voices_splits(data, a.voices, Path(tmp) / "splits")
        flags = ["--data", str(data), "--splits", str(splits), "--epochs", str(a.epochs), "--steps", str(a.steps),
                 "--batch", str(a.batch), "--copies", "1", "--speeds", "1.0", "--patience", "99", "--workers", "1"]
        runs = [train_once(int(n), flags, Path(tmp) / f"run-{n}") for n in a.workers.split(",")]
    result = {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(), "voices": a.voices,
              "global_batch": a.batch, "steps": a.steps, "epochs": a.epochs, "runs": runs}
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
