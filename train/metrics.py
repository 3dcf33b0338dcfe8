"""Verification metrics as Kaldi and WeSpeaker report them.

EER in percent (miss rate = false-accept rate, interpolated on the ROC); minDCF with
C_miss = C_fa = 1 at a target prior, normalised by min(p, 1 - p); a speaker-level bootstrap
interval for the EER.
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import roc_curve


def _roc(labels: np.ndarray, scores: np.ndarray,
         weights: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    labels = np.asarray(labels, dtype=int)
    if labels.min() == labels.max():
        raise ValueError("need both target (1) and non-target (0) trials")
    far, tar, thr = roc_curve(labels, np.asarray(scores, dtype=np.float64), sample_weight=weights)
    return far, 1.0 - tar, thr


def eer(labels, scores, weights=None) -> tuple[float, float]:
    """(EER in percent, threshold at the EER), interpolating where miss and false-accept cross;
    `weights` counts each trial that many times."""
    far, frr, thr = _roc(labels, scores, weights)
    diff = frr - far
    i = int(np.flatnonzero(diff <= 0)[0])  # first point where frr <= far (far rises, frr falls)
    if i == 0 or diff[i] == 0:
        return float(100 * (far[i] + frr[i]) / 2), float(thr[i])
    a = diff[i - 1] / (diff[i - 1] - diff[i])  # linear interpolation between points i-1 and i
    rate = far[i - 1] + a * (far[i] - far[i - 1])
    t = thr[i - 1] + a * (thr[i] - thr[i - 1]) if np.isfinite(thr[i - 1]) else thr[i]
    return float(100 * rate), float(t)


def eer_interval(labels, scores, people, resamples: int = 1000, seed: int = 0,
                 level: float = 0.95) -> tuple[float, float]:
    """Speaker-level bootstrap interval of the EER (percent): draw the people (`people[i]` owns
    trial i, e.g. its test person) with replacement, keep each trial as often as its person was
    drawn, take the EER; the central `level` percentiles over `resamples` draws. One person's
    trials are not independent of each other, so resampling trials would understate the spread."""
    labels, scores = np.asarray(labels, dtype=int), np.asarray(scores, dtype=np.float64)
    names, owner = np.unique(np.asarray(people), return_inverse=True)
    rng = np.random.default_rng(seed)
    rates = []
    for _ in range(resamples):
        weights = np.bincount(rng.integers(len(names), size=len(names)), minlength=len(names))[owner]
        keep = weights > 0
        if labels[keep].min() < labels[keep].max():  # a draw of people with only one class has no EER
            rates.append(eer(labels[keep], scores[keep], weights[keep])[0])
    if not rates:
        raise ValueError("no draw of people holds both target (1) and non-target (0) trials")
    low, high = np.percentile(rates, [50 * (1 - level), 50 * (1 + level)])
    return float(low), float(high)


def min_dcf(labels, scores, p_target: float, c_miss: float = 1.0, c_fa: float = 1.0) -> float:
    far, frr, _ = _roc(labels, scores)
    dcf = c_miss * frr * p_target + c_fa * far * (1 - p_target)
    return float(dcf.min() / min(c_miss * p_target, c_fa * (1 - p_target)))


def threshold_at_far(labels, scores, far_target: float) -> float:
    """Lowest threshold whose false-accept rate is at most `far_target`."""
    far, _, thr = _roc(labels, scores)
    ok = np.flatnonzero(far <= far_target)
    return float(thr[ok[-1]]) if np.isfinite(thr[ok[-1]]) else float(np.max(scores) + 1e-6)


def summary(labels, scores) -> dict[str, float]:
    labels = np.asarray(labels, dtype=int)
    e, t = eer(labels, scores)
    return {
        "eer": round(e, 4),
        "threshold_eer": round(t, 6),
        "threshold_far1": round(threshold_at_far(labels, scores, 0.01), 6),
        "min_dcf_p01": round(min_dcf(labels, scores, 0.01), 4),
        "min_dcf_p05": round(min_dcf(labels, scores, 0.05), 4),
        "n_target": int(labels.sum()),
        "n_nontarget": int((labels == 0).sum()),
    }
