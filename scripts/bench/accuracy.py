"""Accuracy of every system on the same trial lists (run in .venv-train).

    python -m scripts.bench.accuracy --model models/default --data data/corpus \
        [--peer resemblyzer=build/bench/resemblyzer.npz] --out build/bench/accuracy.json --plots docs/bench

Systems: the project's bundle through the device code path (AS-norm, as the device scores, and
plain cosine), the two classical baselines (scripts/bench/baselines.py) and any peer whose
embeddings were written to an npz (paths, vectors) by its own venv. All are scored with
train.metrics; one DET plot per condition (train.evaluate.det_plot) holds every system.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from device.scoring import Scorer, unit
from scripts.bench.baselines import GmmUbm, MfccStats
from scripts.bench.trials import load_trials, trial_files
from train.datasets import Trial, speaker_utterances
from train.evaluate import det_plot, embed_paths, load_embedder, score_trials
from train.metrics import summary

Scores = dict[str, tuple[np.ndarray, np.ndarray]]  # condition -> (labels, scores)


def vector_scores(trials: dict[str, list[Trial]], root: Path, vecs: dict[Path, np.ndarray],
                  scorer: Scorer | None = None) -> tuple[Scores, Scores | None]:
    """Cosine scores (and AS-norm scores when `scorer` has a cohort) per condition."""
    raw: Scores = {}
    norm: Scores = {}
    for cond, ts in trials.items():
        labels, cos, asn = score_trials(ts, root, vecs, scorer)
        raw[cond] = (labels, cos)
        if asn is not None:
            norm[cond] = (labels, asn)
    return raw, norm or None


def project_scores(model: Path, trials: dict[str, list[Trial]], root: Path) -> dict[str, Scores]:
    embedder = load_embedder(model, threads=1)
    vecs, problems, _ = embed_paths(embedder, trial_files(trials, root))
    if problems:
        print(f"accuracy: project could not embed {len(problems)} files: {problems[:3]}")
    bundle = embedder.bundle
    raw, norm = vector_scores(trials, root, vecs, Scorer(bundle.cohort, bundle.asnorm_top_k or 50))
    return {"project (AS-norm)": norm, "project (cosine)": raw} if norm else {"project (cosine)": raw}


def peer_scores(npz: Path, trials: dict[str, list[Trial]], root: Path) -> Scores:
    data = np.load(npz)
    vecs = {Path(p): unit(v) for p, v in zip(data["paths"], data["vectors"])}
    return vector_scores(trials, root, vecs)[0]


def baseline_scores(model: Path, trials: dict[str, list[Trial]], root: Path, per_speaker: int,
                    components: int) -> dict[str, Scores]:
    cfg = load_embedder(model).bundle.features
    train = [p for paths in speaker_utterances(root, root / "splits", "train").values() for p in paths[:per_speaker]]
    stats = MfccStats(cfg).fit(train)
    vecs = {p: stats.embed(p) for p in trial_files(trials, root)}
    gmm = GmmUbm(cfg, components=components).fit(train)
    gmm_scores = {c: (np.array([t.label for t in ts]), gmm.score_pairs([(root / t.enroll, root / t.test) for t in ts]))
                  for c, ts in trials.items()}
    return {"MFCC mean+std (cosine)": vector_scores(trials, root, vecs)[0], f"GMM-UBM ({components} diag)": gmm_scores}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="the project's bundle folder")
    p.add_argument("--data", required=True, help="corpus root: audio, splits/, trials_<condition>.txt")
    p.add_argument("--trials-dir", help="where trials_<condition>.txt are (default: --data)")
    p.add_argument("--peer", action="append", default=[], metavar="NAME=NPZ", help="a peer's embeddings")
    p.add_argument("--train-per-speaker", type=int, default=12, help="baseline training utterances per speaker")
    p.add_argument("--gmm-components", type=int, default=64)
    p.add_argument("--out", required=True, help="JSON to write")
    p.add_argument("--plots", help="folder for det_<condition>.png")
    a = p.parse_args(argv)
    root, model = Path(a.data), Path(a.model)
    trials = load_trials(Path(a.trials_dir or a.data))
    seconds: dict[str, float] = {}
    systems: dict[str, Scores] = {}
    t0 = time.time()
    systems.update(project_scores(model, trials, root))
    seconds["project"] = time.time() - t0
    for spec in a.peer:
        name, npz = spec.split("=", 1)
        systems[name] = peer_scores(Path(npz), trials, root)
    t0 = time.time()
    systems.update(baseline_scores(model, trials, root, a.train_per_speaker, a.gmm_components))
    seconds["baselines"] = time.time() - t0
    result = {"model": str(model), "conditions": list(trials), "seconds": {k: round(v, 1) for k, v in seconds.items()},
              "systems": {name: {c: summary(*s[c]) for c in trials} for name, s in systems.items()}}
    if a.plots:
        Path(a.plots).mkdir(parents=True, exist_ok=True)
        result["plots"] = [str(det_plot({name: scores[c] for name, scores in systems.items()}, f"DET, {c} trials",
                                        Path(a.plots) / f"det_{c}.png", dpi=72)) for c in trials]
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(result, indent=2) + "\n")
    for name, conds in result["systems"].items():
        print(f"{name:28s} " + "  ".join(f"{c} EER {v['eer']:.2f}%" for c, v in conds.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
