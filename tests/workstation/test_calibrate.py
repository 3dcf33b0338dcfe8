"""Score calibration fitted at export: the threshold table, LLRs, Cllr, and the AS-norm choice."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import norm

from export.calibrate import choose, cllr, fit, min_cllr, tail_threshold


def _scores(n_target: int = 4000, n_non: int = 40000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = np.r_[np.ones(n_target, int), np.zeros(n_non, int)]
    return labels, np.r_[rng.normal(2.0, 1.0, n_target), rng.normal(0.0, 1.0, n_non)]


def test_table_matches_the_known_distributions() -> None:
    labels, scores = _scores()
    cal = fit(labels, scores, "cosine")
    for far in (0.1, 0.01, 0.001):
        assert cal.threshold_for_far(far) == pytest.approx(norm.ppf(1 - far), abs=0.08)
    t = cal.threshold_for_far(0.01)
    assert cal.rates(t)["false_reject"] == pytest.approx(norm.cdf(t - 2.0), abs=0.02)
    assert cal.eer_threshold == pytest.approx(1.0, abs=0.05)


def test_llr_of_two_unit_gaussians() -> None:
    labels, scores = _scores()
    cal = fit(labels, scores, "cosine")
    # log N(s;2,1)/N(s;0,1) = 2 s - 2
    assert cal.slope == pytest.approx(2.0, rel=0.05) and cal.offset == pytest.approx(-2.0, abs=0.1)


def test_tail_beyond_the_data_is_extrapolated_monotonically() -> None:
    non = np.random.default_rng(1).normal(0, 1, 1000)
    thresholds = [tail_threshold(non, f) for f in (1e-2, 1e-3, 1e-4, 1e-5)]
    assert np.all(np.diff(thresholds) > 0)
    assert thresholds[-1] == pytest.approx(norm.ppf(1 - 1e-5), abs=0.5)


def test_cllr_known_values() -> None:
    labels = np.array([1, 1, 0, 0])
    assert cllr(labels, np.zeros(4)) == pytest.approx(1.0)  # uninformative
    assert cllr(labels, np.array([20.0, 20.0, -20.0, -20.0])) < 1e-6
    assert cllr(labels, np.array([-20.0, -20.0, 20.0, 20.0])) > 10  # confidently wrong
    lab, s = _scores()
    assert min_cllr(lab, s) <= cllr(lab, fit(lab, s, "cosine").slope * s + fit(lab, s, "cosine").offset) + 1e-3


def test_as_norm_is_kept_only_when_it_wins_at_the_low_false_accept_end() -> None:
    labels, cos = _scores()
    better = np.where(labels == 1, cos + 1.0, cos)  # more separated
    cal, report = choose(labels, cos, better)
    assert cal.scoring == "asnorm" and report["chosen"] == "asnorm"
    cal, report = choose(labels, better, cos)
    assert cal.scoring == "cosine" and set(report["per_scoring"]) == {"cosine", "asnorm"}
