"""Training throughput alone and on N local workers, through the real entry points (`python -m train`
without TF_CONFIG, then scripts/train_distributed.sh --workers N).

    python -m scripts.bench.training_scale --data data/corpus --voices 40 --workers 1,2 \
        --out build/bench/training_scale.json

Every count trains the same model on the same voices with the same global batch, steps and seed. The
rate leaves out the first epoch (tracing); the augmentation bank is timed apart (each worker builds
its share). Local workers share this machine's cores: on a 2-core machine this checks correctness and
overhead, not the speed-up a cluster of machines gives.

With `--tree-files`, it measures how each input pipeline grows with the corpus instead:

    python -m scripts.bench.training_scale --tree-files 2000,20000 --pipeline bank,stream \
        --out build/bench/training_input.json

For each size it builds a LibriSpeech-like tree (`train-clean-100/SPK/CHAPTER/SPK-CHAPTER-NNNN.wav`)
of that many files by hard-linking the corpus's recorded (MBROLA) voices' files, plus two validation
speakers of 8 files each (so validation costs the same at every size), and runs `python -m train
--data TREE --out RUN --epochs 1 --steps 30 --batch 32 --pipeline P` under `/usr/bin/time -v`: peak
RSS, seconds from the start to the first training step, and crops per second in the steps. A run
still short of its first step after `--stop-after` seconds is stopped (its RSS so far is reported).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import re
import signal
import subprocess
import tempfile
import threading
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


TREE_SPEAKERS, VAL_SPEAKERS, VAL_FILES, CHAPTER_FILES = 48, 2, 8, 100
FIRST_STEP = re.compile(r"first training step done")


def librispeech_tree(data: Path, files: int, into: Path) -> Path:
    """`files` training files over TREE_SPEAKERS speakers (chapters of CHAPTER_FILES) and VAL_SPEAKERS
    validation speakers of VAL_FILES, hard links to the corpus's MBROLA voices' wavs; splits in
    TREE/splits (the folder `python -m train` reads by default)."""
    voices = sorted(d for d in data.iterdir() if d.name.startswith("mb-"))[:TREE_SPEAKERS + VAL_SPEAKERS]
    speakers = [(str(1000 + i), sorted(v.glob("*.wav"))) for i, v in enumerate(voices)]
    counts = [files // TREE_SPEAKERS + (i < files % TREE_SPEAKERS) for i in range(TREE_SPEAKERS)]
    counts += [VAL_FILES] * VAL_SPEAKERS
    for (spk, wavs), count in zip(speakers, counts):
        for n in range(count):
            chapter = str(n // CHAPTER_FILES)
            folder = into / "train-clean-100" / spk / chapter
            folder.mkdir(parents=True, exist_ok=True)
            os.link(wavs[n % len(wavs)], folder / f"{spk}-{chapter}-{n:04d}.wav")
    (into / "splits").mkdir()
    (into / "splits" / "train.txt").write_text("".join(f"{s}\n" for s, _ in speakers[:TREE_SPEAKERS]))
    (into / "splits" / "val.txt").write_text("".join(f"{s}\n" for s, _ in speakers[TREE_SPEAKERS:]))
    return into


def measured_run(tree: Path, pipeline: str, out: Path, stop_after: float) -> dict:
    """One `python -m train` run on `tree` under /usr/bin/time -v (stopped when its first step has not
    come after `stop_after` seconds)."""
    cmd = ["/usr/bin/time", "-v", str(TRAIN_PY), "-m", "train", "--data", str(tree), "--out", str(out),
           "--epochs", "1", "--steps", "30", "--batch", "32", "--pipeline", pipeline]
    env = {**os.environ, "PYTHONPATH": str(REPO), "TF_CONFIG": ""}
    began = time.time()
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    first_step: list[float] = []
    reader = threading.Thread(target=lambda: first_step.extend(
        time.time() - began for line in proc.stdout if FIRST_STEP.search(line)))
    reader.start()
    while proc.poll() is None and not first_step and time.time() - began < stop_after:
        time.sleep(1)
    stopped = not first_step and proc.poll() is None
    if stopped:  # the training process and its bank's workers; /usr/bin/time then reports
        for train in _children(proc.pid):
            for pid in [*_children(train), train]:
                os.kill(pid, signal.SIGTERM)
    stderr = proc.communicate()[1]
    reader.join()
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", stderr)
    row = {"pipeline": pipeline, "command": " ".join(cmd[2:]).replace(str(TRAIN_PY), "python"),
           "peak_rss_mb": round(int(rss.group(1)) / 1024) if rss else None,
           "first_step_s": round(first_step[0], 1) if first_step else None,
           "stopped_after_s": round(time.time() - began) if stopped else None, "crops_per_s": None}
    if not stopped and proc.returncode == 0:
        with open(out / "log.csv") as f:
            row["crops_per_s"] = float(list(csv.DictReader(f))[0]["examples_per_s"])
    elif not stopped:
        raise SystemExit(f"{pipeline} run failed:\n{stderr[-3000:]}")
    return row


def _children(pid: int) -> list[int]:
    return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def input_scaling(data: Path, sizes: list[int], pipelines: list[str], stop_after: float) -> list[dict]:
    rows = []
    for files in sizes:
        with tempfile.TemporaryDirectory() as tmp:
            tree = librispeech_tree(data, files, Path(tmp) / "tree")
            for pipeline in pipelines:
                rows.append({"files": files, **measured_run(tree, pipeline, Path(tmp) / f"run-{pipeline}", stop_after)})
                print(json.dumps(rows[-1]), flush=True)
    return rows


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
    p.add_argument("--tree-files", default="", help="measure the input pipelines instead, on LibriSpeech-like "
                   "trees of these many files (e.g. 2000,20000)")
    p.add_argument("--pipeline", default="bank", help="python -m train's input pipeline (bank or stream); with "
                   "--tree-files, several to compare (bank,stream)")
    p.add_argument("--stop-after", type=float, default=600, help="with --tree-files: stop a run still short of "
                   "its first step after this many seconds")
    a = p.parse_args(argv)
    data = Path(a.data).resolve()
    if a.tree_files:
        rows = input_scaling(data, [int(n) for n in a.tree_files.split(",")], a.pipeline.split(","), a.stop_after)
        Path(a.out).parent.mkdir(parents=True, exist_ok=True)
        Path(a.out).write_text(json.dumps({"cores": os.cpu_count(), "runs": rows}, indent=2))
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        splits = voices_splits(data, a.voices, Path(tmp) / "splits")
        flags = ["--data", str(data), "--splits", str(splits), "--epochs", str(a.epochs), "--steps", str(a.steps),
                 "--batch", str(a.batch), "--copies", "1", "--speeds", "1.0", "--patience", "99", "--workers", "1",
                 "--pipeline", a.pipeline]
        runs = [train_once(int(n), flags, Path(tmp) / f"run-{n}") for n in a.workers.split(",")]
    result = {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(), "voices": a.voices,
              "global_batch": a.batch, "steps": a.steps, "epochs": a.epochs, "runs": runs}
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
