"""python -m train.evaluate --model PATH --trials FILE --audio-root DIR [--json OUT] [--plots DIR]

--model is a bundle folder (scored with its TFLite model through the device code path) or a
training run folder (Keras weights). Prints and writes EER, minDCF at p=0.01/0.05, the EER
threshold and trial counts, and the same with AS-norm when the bundle has a cohort.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from device.audio import AudioError
from device.scoring import Scorer
from train.corpus_audio import load_audio
from train.datasets import read_trials
from train.metrics import summary


def load_embedder(model: str | Path, threads: int = 1, runtime: str | None = None):
    """A device Embedder for a bundle folder, a KerasEmbedder for a run folder (imported only then:
    scoring a bundle never loads TensorFlow)."""
    path = Path(model)
    if (path / "model.json").is_file():
        from device.embedder import Embedder

        return Embedder(path, threads=threads, runtime=runtime)
    if (path / "config.json").is_file():
        from train.extract import KerasEmbedder

        return KerasEmbedder.from_run(path)
    raise SystemExit(f"{path}: neither a model bundle (model.json) nor a training run (config.json)")


def embed_paths(embedder, paths: list[Path]) -> tuple[dict[Path, np.ndarray], list[str], int]:
    """Embeddings of unique files; returns (vectors, problems, number padded)."""
    vecs: dict[Path, np.ndarray] = {}
    problems: list[str] = []
    padded = 0
    for p in dict.fromkeys(paths):
        try:
            e = embedder.embed_audio(load_audio(p))
        except AudioError as exc:
            problems.append(str(exc))
            continue
        vecs[p] = e.vector
        padded += int(e.padded)
    return vecs, problems, padded


def score_trials(trials, root: Path, vecs: dict[Path, np.ndarray], scorer: Scorer | None = None):
    """(labels, raw cosine scores, AS-norm scores or None) over the trials whose files embedded."""
    keep = [(lab, root / a, root / b) for lab, a, b in trials if root / a in vecs and root / b in vecs]
    labels = np.array([k[0] for k in keep], dtype=int)
    enroll = np.stack([vecs[k[1]] for k in keep])
    test = np.stack([vecs[k[2]] for k in keep])
    raw = Scorer().score_pairs(enroll, test)
    norm = scorer.score_pairs(enroll, test) if scorer is not None and scorer.cohort is not None else None
    return labels, raw, norm


def evaluate(embedder, trials_file: Path, root: Path, cohort: np.ndarray | None = None, top_k: int = 50) -> dict:
    trials = read_trials(trials_file)
    vecs, problems, padded = embed_paths(embedder, [root / p for t in trials for p in t[1:]])
    labels, raw, norm = score_trials(trials, root, vecs, Scorer(cohort, top_k))
    result = {"trials": str(trials_file), **summary(labels, raw), "n_files": len(vecs), "n_padded": padded,
              "window_seconds": round(embedder.window_seconds, 3), "problems": problems}
    if norm is not None:
        result["asnorm"] = summary(labels, norm)
    result["_scores"] = {"labels": labels, "cosine": raw, "asnorm": norm}
    return result


def det_plot(curves: dict[str, tuple[np.ndarray, np.ndarray]], title: str, path: Path, dpi: int = 100) -> Path:
    """The project's one DET plot: a curve per {name: (labels, scores)} on normal-deviate axes.
    train.evaluate and the benchmarks (scripts/bench/accuracy.py) both draw with it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from scipy.stats import norm as gauss
    from sklearn.metrics import det_curve

    fig, ax = plt.subplots(figsize=(5, 4.5))
    for name, (labels, scores) in curves.items():
        fpr, fnr, _ = det_curve(labels, scores)
        ax.plot(gauss.ppf(np.clip(fpr, 1e-4, 1 - 1e-4)), gauss.ppf(np.clip(fnr, 1e-4, 1 - 1e-4)), label=name)
    ticks = [0.001, 0.01, 0.05, 0.2, 0.5]
    ax.set_xticks(gauss.ppf(ticks), [f"{100 * t:g}%" for t in ticks])
    ax.set_yticks(gauss.ppf(ticks), [f"{100 * t:g}%" for t in ticks])
    ax.set_xlim(gauss.ppf(5e-4), gauss.ppf(0.8))
    ax.set_ylim(gauss.ppf(5e-4), gauss.ppf(0.8))
    ax.set_xlabel("false accept rate")
    ax.set_ylabel("false reject rate")
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return path


def write_plots(result: dict, out: Path, title: str) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    s = result["_scores"]
    det = det_plot({k: (s["labels"], s[k]) for k in ("cosine", "asnorm") if s[k] is not None}, f"DET: {title}",
                   out / "det.png")
    fig, ax = plt.subplots(figsize=(6, 3.5))
    key = "asnorm" if s["asnorm"] is not None else "cosine"
    for lab, name in ((1, "target"), (0, "non-target")):
        ax.hist(s[key][s["labels"] == lab], bins=50, alpha=0.6, label=name, density=True)
    thr = (result.get("asnorm") or result)["threshold_eer"] if key == "asnorm" else result["threshold_eer"]
    ax.axvline(thr, color="k", ls="--", label="EER threshold")
    ax.set_xlabel(f"{key} score")
    ax.set_title(f"Scores: {title}")
    ax.legend()
    hist = out / "scores.png"
    fig.tight_layout()
    fig.savefig(hist, dpi=100)
    plt.close(fig)
    return [det, hist]


def public(result: dict) -> dict:
    return {k: v for k, v in result.items() if not k.startswith("_")}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m train.evaluate", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="bundle folder (models/NAME) or training run folder")
    p.add_argument("--trials", required=True, help="VoxCeleb-format trial list: label enroll test")
    p.add_argument("--audio-root", required=True, help="folder the trial paths are relative to")
    p.add_argument("--json", help="write the metrics here")
    p.add_argument("--plots", help="write det.png and scores.png here")
    p.add_argument("--threads", type=int, default=1)
    a = p.parse_args(argv)
    embedder = load_embedder(a.model, a.threads)
    bundle = getattr(embedder, "bundle", None)
    cohort = bundle.cohort if bundle is not None else None
    result = evaluate(embedder, Path(a.trials), Path(a.audio_root), cohort, bundle.asnorm_top_k if bundle else 50)
    result["model"] = str(a.model)
    if a.plots:
        result["plots"] = [str(x) for x in write_plots(result, Path(a.plots), Path(a.trials).stem)]
    out = public(result)
    text = json.dumps(out, indent=2)
    print(text)
    if result["n_padded"]:
        print(f"note: {result['n_padded']} utterances were shorter than one {result['window_seconds']} s window "
              "and were padded by repetition", file=sys.stderr)
    if result["problems"]:
        print(f"note: {len(result['problems'])} files could not be used: {result['problems'][:3]}", file=sys.stderr)
    if a.json:
        Path(a.json).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
