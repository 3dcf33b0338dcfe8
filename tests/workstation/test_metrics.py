"""Metric functions against hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest

from train.metrics import eer, min_dcf, summary, threshold_at_far


def test_perfect_separation_has_zero_eer():
    e, t = eer([1, 1, 0, 0], [0.9, 0.8, 0.2, 0.1])
    assert e == 0.0 and 0.2 <= t <= 0.8
    assert min_dcf([1, 1, 0, 0], [0.9, 0.8, 0.2, 0.1], 0.01) == 0.0


def test_eer_hand_computed():
    # targets 0.9 0.7 0.4, non-targets 0.6 0.3 0.2 0.1: one target below one non-target.
    # At t=0.6: FAR 1/4, FRR 1/3; at t=0.7: FAR 0, FRR 1/3; at t=0.4: FAR 1/4, FRR 1/3...
    labels = [1, 1, 1, 0, 0, 0, 0]
    scores = [0.9, 0.7, 0.4, 0.6, 0.3, 0.2, 0.1]
    e, _ = eer(labels, scores)
    # ROC points (far, frr): (0, 1/3) at 0.7 and (1/4, 1/3) at 0.6 then (1/4, 0) at 0.4: rates cross at 0.25..0.333
    assert 25.0 <= e <= 100 / 3


def test_eer_symmetric_case_is_exact():
    # two targets, two non-targets, one swap: FAR = FRR = 50% at the crossing
    assert eer([1, 1, 0, 0], [0.9, 0.3, 0.5, 0.1])[0] == pytest.approx(50.0)


def test_min_dcf_hand_computed():
    labels = [1, 1, 0, 0]
    scores = [0.9, 0.3, 0.5, 0.1]
    # thresholds: accept all -> Pfa=1, Pmiss=0; >0.3..0.5 -> Pfa .5 Pmiss 0; 0.5<t<=0.9 -> Pfa 0, Pmiss .5
    # p=0.05: options 0.95, 0.475, 0.025, (reject all: 0.05) -> min 0.025, normalised by 0.05 -> 0.5
    assert min_dcf(labels, scores, 0.05) == pytest.approx(0.5)
    assert min_dcf(labels, scores, 0.01) == pytest.approx(0.5)


def test_threshold_at_far_keeps_false_accepts_below_target():
    rng = np.random.default_rng(0)
    tgt, non = rng.normal(1, 0.3, 500), rng.normal(0, 0.3, 5000)
    labels = np.r_[np.ones(500), np.zeros(5000)]
    scores = np.r_[tgt, non]
    t = threshold_at_far(labels, scores, 0.01)
    assert (non >= t).mean() <= 0.01
    assert (non >= t - 0.02).mean() > 0.005  # and it is not needlessly strict


def test_summary_fields_and_counts():
    s = summary([1, 0, 1, 0, 0], [0.8, 0.1, 0.6, 0.3, 0.2])
    assert s["n_target"] == 2 and s["n_nontarget"] == 3 and s["eer"] == 0.0
    assert {"eer", "threshold_eer", "threshold_far1", "min_dcf_p01", "min_dcf_p05"} <= set(s)


def test_one_class_is_an_error():
    with pytest.raises(ValueError, match="both target"):
        eer([1, 1], [0.2, 0.3])
