"""Scores and decisions: cosine similarity, adaptive symmetric score normalisation (AS-norm)
against the bundle's cohort, and the thresholded accept/reject rule shared by the daemon, the
CLI, evaluation and the status page."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def unit(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v, dtype=np.float32)
    return v / (np.linalg.norm(v, axis=-1, keepdims=True) + 1e-9)


def _top_k_stats(vecs: np.ndarray, cohort: np.ndarray, k: int,
                 exclude: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    s = unit(vecs) @ cohort.T
    if exclude is not None:
        s = np.where(exclude, -np.inf, s)
    k = min(k, cohort.shape[0])
    top = np.partition(s, -k, axis=1)[:, -k:]
    return top.mean(axis=1), top.std(axis=1) + 1e-6


def asnorm_scores(enroll: np.ndarray, test: np.ndarray, cohort: np.ndarray, top_k: int,
                  exclude: np.ndarray | None = None) -> np.ndarray:
    """AS-norm of paired rows: enroll[i] vs test[i] (both (N, D)). `exclude` (N, cohort size), if
    given, leaves cohort entries out of row i's statistics (calibration leaves a trial's own people
    out, as a real user is never in the cohort)."""
    raw = np.sum(unit(enroll) * unit(test), axis=1)
    mu_e, sd_e = _top_k_stats(enroll, cohort, top_k, exclude)
    mu_t, sd_t = _top_k_stats(test, cohort, top_k, exclude)
    return 0.5 * ((raw - mu_e) / sd_e + (raw - mu_t) / sd_t)


@dataclass
class Scorer:
    """Scores an enrolled profile against a test embedding the way the bundle says."""

    cohort: np.ndarray | None = None
    top_k: int = 50

    @classmethod
    def for_bundle(cls, bundle) -> Scorer:
        """The scoring the bundle's decisions are calibrated for (AS-norm only when they are)."""
        return cls(bundle.cohort if bundle.scoring == "asnorm" else None, bundle.asnorm_top_k or 50)

    @property
    def kind(self) -> str:
        return "asnorm" if self.cohort is not None else "cosine"

    def score(self, enroll: np.ndarray, test: np.ndarray) -> float:
        return float(self.score_pairs(enroll[None], test[None])[0])

    def score_pairs(self, enroll: np.ndarray, test: np.ndarray) -> np.ndarray:
        if self.cohort is None:
            return np.sum(unit(enroll) * unit(test), axis=1)
        return asnorm_scores(enroll, test, self.cohort, self.top_k)

    def score_many(self, profiles: dict[str, np.ndarray], test: np.ndarray) -> dict[str, float]:
        if not profiles:
            return {}
        names = list(profiles)
        enroll = np.stack([profiles[n] for n in names])
        scores = self.score_pairs(enroll, np.repeat(test[None], len(names), axis=0))
        return dict(zip(names, map(float, scores)))


@dataclass
class Decision:
    accepted: bool
    speaker: str | None  # the claimed or best-matching speaker; None when nobody is enrolled
    score: float
    threshold: float
    unsure_below: float | None = None  # lower edge of the "unsure" band (None: no band)

    @property
    def margin(self) -> float:
        return self.score - self.threshold

    @property
    def unsure(self) -> bool:
        """Not accepted, but too close to call: more speech may settle it."""
        return not self.accepted and self.unsure_below is not None and self.score >= self.unsure_below

    @property
    def label(self) -> str:
        return "accept" if self.accepted else "unsure" if self.unsure else "reject"


def verify(scorer: Scorer, profile: np.ndarray, test: np.ndarray, claim: str, threshold: float,
           unsure_below: float | None = None) -> Decision:
    """1:1 — accept when the score reaches the threshold; "unsure" from `unsure_below` up to it."""
    score = scorer.score(profile, test)
    return Decision(score >= threshold, claim, score, threshold, unsure_below)


def identify(scorer: Scorer, profiles: dict[str, np.ndarray], test: np.ndarray, threshold: float,
             unsure_below: float | None = None) -> Decision:
    """1:N with an 'unknown' answer: the best match, accepted only above the threshold."""
    scores = scorer.score_many(profiles, test)
    if not scores:
        return Decision(False, None, float("-inf"), threshold, unsure_below)
    best = max(scores, key=scores.get)
    return Decision(scores[best] >= threshold, best, scores[best], threshold, unsure_below)
