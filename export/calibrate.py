"""Decisions that ship with a model, measured through the device embedder: thresholds on the
validation speakers (at the EER and at FAR = 1 %, for cosine and AS-norm scoring) and the AS-norm
cohort (mean embeddings of up to 200 training speakers)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from device.audio import load_audio
from device.scoring import Scorer, unit
from train.augment import noisy_trial_version
from train.metrics import summary


def cohort_embeddings(embedder, speakers: dict[str, list[Path]], max_speakers: int = 200, per_speaker: int = 8) -> np.ndarray:
    means = []
    for paths in list(speakers.values())[:max_speakers]:
        vecs, _ = embedder.embed_files(paths[:per_speaker])
        means.append(unit(vecs.mean(axis=0)))
    return np.stack(means).astype(np.float16)


def calibration_scores(embedder, speakers: dict[str, list[Path]], cohort: np.ndarray, top_k: int, seed: int = 11):
    """Validation trials: a clean utterance against every other utterance, clean and noisy."""
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
    cos = Scorer().score_pairs(enroll, test)
    asn = Scorer(cohort.astype(np.float32), top_k).score_pairs(enroll, test)
    return labels, cos, asn


def thresholds(labels: np.ndarray, cos: np.ndarray, asn: np.ndarray) -> tuple[dict, dict]:
    s_cos, s_asn = summary(labels, cos), summary(labels, asn)
    table = {"cosine": {"eer": s_cos["threshold_eer"], "far1": s_cos["threshold_far1"]},
             "asnorm": {"eer": s_asn["threshold_eer"], "far1": s_asn["threshold_far1"]}}
    return table, {"cosine": s_cos, "asnorm": s_asn}
