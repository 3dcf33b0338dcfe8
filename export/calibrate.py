"""Decisions that ship with a model, measured through the device embedder.

* The AS-norm cohort: mean embeddings of up to 600 training voices spread over the whole training
  list (every engine, drawn voices and recorded ones), plus, with a development set, one
  pseudo-speaker per person of its calibration half and condition (clean, noisy room, each
  channel): the kinds of recording the device meets, which the training voices are not. Scores
  for fitting are computed leaving the trial's own people out of the cohort, as a real user is
  never in it.
* The score calibration (`device.calibration.Calibration`), fitted on calibration trials: with a
  development set (`--dev`), sessions of 1, 2 and 3 utterances of its calibration half's people in
  the condition families a device meets (export/evidence.py: people, engines and channels training
  never saw); without one, the corpus's validation speakers, clean and noisy, single utterances.
  Cosine and AS-norm are both fitted on single utterances; the bundle keeps the one with the lower
  minDCF(0.01), so AS-norm is used only where it helps at the low false-accept end, and fits the
  other evidence levels and the same-speaker cosine of sessions with it.
* Legacy per-scoring thresholds (schema 1 readers, and the report).

    python -m export.calibrate --bundle models/NAME --dev data/dev

refits an existing bundle's decisions (the cohort's development rows and the score calibration)
on the development set as it is now, leaving the model file untouched.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from scipy.stats import norm as gauss
from sklearn.linear_model import LogisticRegression

from device import room
from device.bundle import Bundle, sha256_file
from device.calibration import Calibration
from device.embedder import Embedder
from device.scoring import Scorer, unit
from export import evidence
from train.augment import noisy_trial_version
from train.channels import CHANNELS
from train.corpus_audio import load_audio
from train.evaluate import embed_paths
from train.metrics import eer, min_dcf, summary

FAR_GRID = np.logspace(-5, np.log10(0.5), 80)[::-1]  # per-comparison false-accept rates tabled
MIN_TAIL_COUNT = 5  # below this many non-targets above a threshold, extrapolate the tail


def cohort_embeddings(embedder, speakers: dict[str, list[Path]], max_speakers: int = 600, per_speaker: int = 6) -> np.ndarray:
    names = list(speakers)
    picks = [names[i] for i in np.unique(np.linspace(0, len(names) - 1, min(max_speakers, len(names))).astype(int))]
    means = []
    for name in picks:  # corpus audio: read as training reads it (.m4a/.mp3 too)
        vecs = np.stack([embedder.embed(load_audio(p)) for p in speakers[name][:per_speaker]])
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


def dev_calibration(embedder, dev: Path, cohort: np.ndarray, owners: list[str], top_k: int,
                    half: str = "calib") -> tuple[dict, dict, dict]:
    """(score_calibration block, its report, legacy thresholds) from the development set's `half`:
    single utterances choose the scoring and fit level 1, sessions of 2 and 3 utterances fit theirs."""
    people = evidence.roles(dev, half)
    if not people or not any(p.test for p in people.values()):
        raise SystemExit(f"{dev}: no {half} people with test utterances; build the development set (scripts/make_devset.sh)")
    found, problems, _ = embed_paths(embedder, [dev / r for r in evidence.files_needed(people)])
    if problems:
        raise SystemExit(f"calibration: {len(problems)} development files could not be used: {problems[:3]}")
    vecs = {str(path.relative_to(dev)): v for path, v in found.items()}
    levels = {n: evidence.session_trials(people, vecs, n) for n in evidence.LEVELS}
    single = levels[1]
    cos, asn = single.scores(), single.scores(cohort, top_k, owners)
    calibration, report = choose(single.labels, cos, asn, single.family)
    use_cohort = cohort if calibration.scoring == "asnorm" else None
    block = calibration.to_dict()
    block["by_utterances"], report["by_utterances"] = {}, {}
    for n, trials in levels.items():
        scores = trials.scores(use_cohort, top_k, owners)
        fitted = calibration if n == 1 else fit(trials.labels, scores, calibration.scoring, trials.family)
        if n > 1:
            block["by_utterances"][str(n)] = fitted.to_dict()
        report["by_utterances"][str(n)] = {
            **summary(trials.labels, scores), "threshold_far1_household": round(fitted.threshold_for_far(0.01), 6),
            "families": {f: round(eer(trials.labels[trials.family == f], scores[trials.family == f])[0], 3)
                         for f in evidence.FAMILIES}}
    block["same_speaker"] = report["same_speaker"] = evidence.same_speaker_threshold(people, vecs)
    if calibration.scoring == "cosine":
        block["room"], report["room"] = room_calibration(people, vecs, cohort)
    report["trials"] = {"half": half, "people": len(people), "families": list(evidence.FAMILIES),
                        "per_level": {str(n): int(t.labels.size) for n, t in levels.items()}}
    return block, report, legacy_thresholds(single.labels, cos, asn)


def tail_threshold(nontarget: np.ndarray, far: float) -> float:
    """The score a `far` share of non-targets exceed: empirical while at least MIN_TAIL_COUNT
    non-targets are above it, beyond that a Gaussian tail (the non-targets' spread) continued from
    the last empirical point."""
    s = np.asarray(nontarget, dtype=np.float64)
    if far * s.size >= MIN_TAIL_COUNT:
        return float(np.quantile(s, 1 - far))
    f0 = MIN_TAIL_COUNT / s.size
    return float(np.quantile(s, 1 - f0) + np.std(s) * (gauss.ppf(1 - far) - gauss.ppf(1 - f0)))


def fit(labels: np.ndarray, scores: np.ndarray, scoring: str, families: np.ndarray | None = None) -> Calibration:
    """Logistic-regression LLR (classes weighted equally) and the threshold table of `scores`. With
    `families` (the condition of each trial) every tabled false-accept rate holds in the worst
    family: the device cannot tell a quiet kitchen from a noisy one before it decides."""
    labels, scores = np.asarray(labels, dtype=int), np.asarray(scores, dtype=np.float64)
    lr = LogisticRegression(C=1e6, class_weight="balanced").fit(scores[:, None], labels)
    slope, offset = float(lr.coef_[0, 0]), float(lr.intercept_[0])
    nontarget, target = scores[labels == 0], scores[labels == 1]
    groups = [nontarget] if families is None else [nontarget[families[labels == 0] == f] for f in np.unique(families)]
    thresholds = np.maximum.accumulate([max(tail_threshold(g, f) for g in groups) for f in FAR_GRID])
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


def choose(labels: np.ndarray, cos: np.ndarray, asn: np.ndarray | None,
           families: np.ndarray | None = None) -> tuple[Calibration, dict]:
    """Fit both scorings; keep AS-norm only when its minDCF(0.01) on these trials is lower."""
    fits = {"cosine": (fit(labels, cos, "cosine", families), cos)}
    if asn is not None:
        fits["asnorm"] = (fit(labels, asn, "asnorm", families), asn)
    report = {k: {**summary(labels, s), "cllr": round(cllr(labels, c.slope * s + c.offset), 4),
                  "min_cllr": round(min_cllr(labels, s), 4)} for k, (c, s) in fits.items()}
    best = min(fits, key=lambda k: (min_dcf(labels, fits[k][1], 0.01), k != "cosine"))
    return fits[best][0], {"chosen": best, "by": "min_dcf_p01", "per_scoring": report}


def legacy_thresholds(labels: np.ndarray, cos: np.ndarray, asn: np.ndarray | None) -> dict:
    table = {"cosine": summary(labels, cos)}
    if asn is not None:
        table["asnorm"] = summary(labels, asn)
    return {k: {"eer": v["threshold_eer"], "far1": v["threshold_far1"]} for k, v in table.items()}


def room_calibration(people: dict[str, evidence.Roles], vecs: dict[str, np.ndarray],
                     cohort: np.ndarray) -> tuple[dict, dict]:
    """The calibration of room-centred cosine scores (device/room.py) per evidence level: in each
    family the device has heard ROOM_PEOPLE of the half's people (their test utterances there) and
    centres on that estimate as the device would."""
    cohort_mean = np.mean(unit(cohort.astype(np.float32)), axis=0)
    block = {"blend": room.BLEND, "prior_utterances": room.PRIOR_UTTERANCES, "by_utterances": {}}
    report = {}
    for n in evidence.LEVELS:
        trials = evidence.session_trials(people, vecs, n, centres=evidence.room_centres(people, vecs, cohort_mean))
        scores = trials.scores()
        fitted = fit(trials.labels, scores, "cosine", trials.family)
        block["by_utterances"][str(n)] = fitted.to_dict()
        report[str(n)] = {**summary(trials.labels, scores),
                          "families": {f: round(eer(trials.labels[trials.family == f], scores[trials.family == f])[0], 3)
                                       for f in evidence.FAMILIES}}
    return block, report


def recalibrate(bundle_dir: Path, dev: Path) -> dict:
    """Refit `bundle_dir`'s development-set decisions in place: the cohort's development rows (its
    training-voice rows are kept) and the score calibration. The model file is not touched."""
    bundle = Bundle.load(bundle_dir)
    meta = bundle.meta
    info = meta.get("cohort") or {}
    if not info:
        raise SystemExit(f"{bundle_dir}: no cohort to keep; re-export it with python -m export --dev {dev}")
    embedder = Embedder(bundle_dir)
    training_rows = np.load(bundle_dir / info["file"])[: int(info["training_voices"])]
    extra, extra_owners = dev_cohort(embedder, dev)
    cohort = np.concatenate([training_rows, extra]).astype(np.float16)
    owners = ["training voice"] * len(training_rows) + extra_owners
    np.save(bundle_dir / info["file"], cohort)
    meta["cohort"] = {**info, "sha256": sha256_file(bundle_dir / info["file"]), "n": int(cohort.shape[0]),
                      "dev_pseudo_speakers": len(extra_owners)}
    block, report, legacy = dev_calibration(embedder, dev, cohort, owners, int(info.get("top_k", 50)))
    meta.update(score_calibration=block, calibration_report=report, thresholds=legacy,
                calibrated_on={"dev": str(dev), "half": "calib", "trials": report["trials"]})
    (bundle_dir / "model.json").write_text(json.dumps(meta, indent=2))
    Bundle.load(bundle_dir)  # what the device will do
    return report


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m export.calibrate", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bundle", required=True, type=Path, help="bundle folder to refit in place, e.g. models/default")
    p.add_argument("--dev", required=True, type=Path, help="development set (data/dev)")
    a = p.parse_args(argv)
    report = recalibrate(a.bundle, a.dev)
    for n, row in report["by_utterances"].items():
        print(f"{n} utterance(s): EER {row['eer']:.2f} %  far1 threshold {row['threshold_far1_household']:.4f}  "
              f"per family {row['families']}")
    print(f"same speaker: {report['same_speaker']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
