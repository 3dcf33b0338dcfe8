"""Decisions that ship with a model, measured through the device embedder.

* The AS-norm cohort: mean embeddings of up to 600 training voices spread over the whole training
  list (every engine, drawn voices and recorded ones), plus, with a development set, one
  pseudo-speaker per person of its calibration half and condition (clean, noisy room, each
  channel): the kinds of recording the device meets, which the training voices are not. Scores
  for fitting are computed leaving the trial's own people out of the cohort, as a real user is
  never in it.
* The score calibration (`device.calibration.Calibration`), fitted on calibration trials: with a
  development set (`--dev`), every condition of its calibration half (people, engines and
  channels training never saw); without one, the corpus's validation speakers, clean and noisy.
  Cosine and AS-norm are both fitted; the bundle keeps the one with the lower minDCF(0.01) on the
  calibration trials, so AS-norm is used only where it helps at the low false-accept end.
* Legacy per-scoring thresholds (schema 1 readers, and the report).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy.stats import norm as gauss
from sklearn.linear_model import LogisticRegression

from device.audio import load_audio
from device.calibration import Calibration
from device.scoring import Scorer, asnorm_scores, unit
from train.augment import noisy_trial_version
from train.channels import CHANNELS
from train.datasets import read_trials
from train.evaluate import embed_paths, score_trials
from train.metrics import eer, min_dcf, summary

FAR_GRID = np.logspace(-5, np.log10(0.5), 80)[::-1]  # per-comparison false-accept rates tabled
MIN_TAIL_COUNT = 5  # below this many non-targets above a threshold, extrapolate the tail


def cohort_embeddings(embedder, speakers: dict[str, list[Path]], max_speakers: int = 600, per_speaker: int = 6) -> np.ndarray:
    names = list(speakers)
    picks = [names[i] for i in np.unique(np.linspace(0, len(names) - 1, min(max_speakers, len(names))).astype(int))]
    means = []
    for name in picks:
        vecs, _ = embedder.embed_files(speakers[name][:per_speaker])
        means.append(unit(vecs.mean(axis=0)))
    return np.stack(means).astype(np.float16)


def dev_cohort(embedder, dev: Path, half: str = "calib") -> tuple[np.ndarray, list[str]]:
    """(unit mean embedding, person) of every person of the half in every condition."""
    rows, owners = [], []
    for person in (dev / "splits" / f"{half}.txt").read_text().split():
        names = sorted(p.name for p in (dev / person).glob("*.wav"))
        for prefix in ["", "_noisy/", *(f"_channel/{kind}/" for kind in CHANNELS)]:
            vecs, _ = embedder.embed_files([dev / f"{prefix}{person}" / n for n in names])
            rows.append(unit(vecs.mean(axis=0)))
            owners.append(person)
    return np.stack(rows).astype(np.float16), owners


def validation_scores(embedder, speakers: dict[str, list[Path]], scorer: Scorer, seed: int = 11):
    """Corpus validation trials (no dev set): a clean utterance against every other, clean and noisy.
    Returns (labels, cosine, AS-norm)."""
    rng = np.random.default_rng(seed)
    clean, noisy, spk = [], [], []
    for i, paths in enumerate(speakers.values()):
        for p in paths:
            audio = load_audio(p)
            clean.append(embedder.embed(audio))
            noisy.append(embedder.embed(noisy_trial_version(audio, rng)))
            spk.append(i)
    clean, noisy, spk = np.stack(clean), np.stack(noisy), np.array(spk)
    iu = np.triu_indices(len(spk), 1)
    enroll = np.concatenate([clean[iu[0]], clean[iu[0]]])
    test = np.concatenate([clean[iu[1]], noisy[iu[1]]])
    labels = np.concatenate([spk[iu[0]] == spk[iu[1]]] * 2).astype(int)
    return labels, Scorer().score_pairs(enroll, test), scorer.score_pairs(enroll, test)


def dev_scores(embedder, dev: Path, cohort: np.ndarray, owners: list[str], top_k: int,
               half: str = "calib") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every condition's trials of the development set's `half`, pooled: (labels, cosine, AS-norm
    with the trial's own people left out of the cohort)."""
    trials = [t for f in sorted((dev / "trials" / half).glob("*.txt")) for t in read_trials(f)]
    if not trials:
        raise SystemExit(f"{dev}/trials/{half}: no trial lists; build the development set (scripts/make_devset.sh)")
    vecs, problems, _ = embed_paths(embedder, [dev / p for t in trials for p in t[1:]])
    if problems:
        print(f"calibration: {len(problems)} development files could not be used: {problems[:3]}")
    keep = [t for t in trials if dev / t[1] in vecs and dev / t[2] in vecs]
    labels, cos, _ = score_trials(keep, dev, vecs)
    enroll, test = (np.stack([vecs[dev / t[i]] for t in keep]) for i in (1, 2))
    own = np.array(owners)[None, :]
    spk_e, spk_t = (np.array([Path(t[i]).parts[-2] for t in keep])[:, None] for i in (1, 2))
    return labels, cos, asnorm_scores(enroll, test, unit(cohort.astype(np.float32)), top_k,
                                      exclude=(own == spk_e) | (own == spk_t))


def tail_threshold(nontarget: np.ndarray, far: float) -> float:
    """The score a `far` share of non-targets exceed: empirical while at least MIN_TAIL_COUNT
    non-targets are above it, beyond that a Gaussian tail (the non-targets' spread) continued from
    the last empirical point."""
    s = np.asarray(nontarget, dtype=np.float64)
    if far * s.size >= MIN_TAIL_COUNT:
        return float(np.quantile(s, 1 - far))
    f0 = MIN_TAIL_COUNT / s.size
    return float(np.quantile(s, 1 - f0) + np.std(s) * (gauss.ppf(1 - far) - gauss.ppf(1 - f0)))


def fit(labels: np.ndarray, scores: np.ndarray, scoring: str) -> Calibration:
    """Logistic-regression LLR (classes weighted equally) and the threshold table of `scores`."""
    labels, scores = np.asarray(labels, dtype=int), np.asarray(scores, dtype=np.float64)
    lr = LogisticRegression(C=1e6, class_weight="balanced").fit(scores[:, None], labels)
    slope, offset = float(lr.coef_[0, 0]), float(lr.intercept_[0])
    nontarget, target = scores[labels == 0], scores[labels == 1]
    thresholds = np.maximum.accumulate([tail_threshold(nontarget, f) for f in FAR_GRID])
    thresholds, first = np.unique(thresholds, return_index=True)
    far = FAR_GRID[first]
    frr = np.array([np.mean(target < t) for t in thresholds])
    return Calibration(scoring, slope, offset, thresholds, far, frr, eer(labels, scores)[1])


def cllr(labels: np.ndarray, llr: np.ndarray) -> float:
    """Cost of log-likelihood-ratio scores in bits (0 perfect, 1 uninformative)."""
    labels, llr = np.asarray(labels, dtype=int), np.asarray(llr, dtype=np.float64)
    tar, non = llr[labels == 1], llr[labels == 0]
    return float(0.5 * (np.mean(np.logaddexp(0, -tar)) + np.mean(np.logaddexp(0, non))) / np.log(2))


def min_cllr(labels: np.ndarray, scores: np.ndarray) -> float:
    """Cllr after the best monotonic (isotonic, PAV) calibration: the discrimination part alone."""
    from sklearn.isotonic import IsotonicRegression

    labels, scores = np.asarray(labels, dtype=int), np.asarray(scores, dtype=np.float64)
    p = IsotonicRegression(y_min=1e-6, y_max=1 - 1e-6, out_of_bounds="clip").fit_transform(scores, labels)
    prior = labels.mean()
    llr = np.log(p / (1 - p)) - np.log(prior / (1 - prior))
    return cllr(labels, llr)


def choose(labels: np.ndarray, cos: np.ndarray, asn: np.ndarray | None) -> tuple[Calibration, dict]:
    """Fit both scorings; keep AS-norm only when its minDCF(0.01) on these trials is lower."""
    fits = {"cosine": (fit(labels, cos, "cosine"), cos)}
    if asn is not None:
        fits["asnorm"] = (fit(labels, asn, "asnorm"), asn)
    report = {k: {**summary(labels, s), "cllr": round(cllr(labels, c.slope * s + c.offset), 4),
                  "min_cllr": round(min_cllr(labels, s), 4)} for k, (c, s) in fits.items()}
    best = min(fits, key=lambda k: (min_dcf(labels, fits[k][1], 0.01), k != "cosine"))
    return fits[best][0], {"chosen": best, "by": "min_dcf_p01", "per_scoring": report}


def legacy_thresholds(labels: np.ndarray, cos: np.ndarray, asn: np.ndarray | None) -> dict:
    table = {"cosine": summary(labels, cos)}
    if asn is not None:
        table["asnorm"] = summary(labels, asn)
    return {k: {"eer": v["threshold_eer"], "far1": v["threshold_far1"]} for k, v in table.items()}
