"""A distillation teacher (train/teacher.py's encoders) as a peer on trial lists, so the report shows
how far the teacher is ahead of the student on the same people. Runs inside .venv-peers.

    python -m scripts.bench.teacher_peer --encoder voicefilter --data data/dev --trials-dir T --out build/dev/voicefilter

Embeds every file the trial lists in --trials-dir name (relative to --data) and writes `<out>.npz`
(paths, vectors) for scripts/bench/generalisation.py's `--peer NAME=NPZ`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from device.audio import load_audio
from scripts.bench.trials import load_trials, trial_files
from train.teacher import encoder


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--encoder", required=True, help="train.teacher's --encoder")
    p.add_argument("--data", required=True, help="corpus root the trial paths are relative to")
    p.add_argument("--trials-dir", help="where trials_<condition>.txt are (default: --data)")
    p.add_argument("--out", required=True, help="output stem: writes OUT.npz")
    a = p.parse_args(argv)
    embed = encoder(a.encoder)
    paths = trial_files(load_trials(Path(a.trials_dir or a.data)), Path(a.data))
    vectors = np.stack([embed(load_audio(path)).astype(np.float32) for path in paths])
    out = Path(a.out).with_suffix(".npz")
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(out, paths=np.array([str(x) for x in paths]), vectors=vectors)
    print(f"{len(paths)} files -> {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
