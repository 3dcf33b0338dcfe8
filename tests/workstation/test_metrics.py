"""Metric functions against hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest

from train.metrics import eer, eer_interval, min_dcf, summary, threshold_at_far


def test_perfect_separation_has_zero_eer():
    e, t = eer([1, 1, 0, 0], [0.9, 0.8, 0.2, 0.1])
    assert e == 0.0 and 0.2 <= t <= 0.8
    assert min_dcf([1, 1, 0, 0], [0.9, 0.8, 0.2, 0.1], 0.01) == 0.0


def test_eer_hand_computed():
    # targets 0.9 0.7 0.4, non-targets 0.6 0.3 0.2 0.1; accept at score >= t. ROC points (FAR, FRR):
    # t=0.7 (0, 1/3), t=0.6 (1/4, 1/3), t=0.4 (1/4, 0). FRR - FAR goes from +1/12 to -1/4 between
    # t=0.6 and t=0.4: a quarter of the way (1/12 / (1/12 + 1/4)), where FAR = FRR = 1/4 and the
    # interpolated threshold is 0.6 + (0.4 - 0.6) / 4 = 0.55.
    labels = [1, 1, 1, 0, 0, 0, 0]
    scores = [0.9, 0.7, 0.4, 0.6, 0.3, 0.2, 0.1]
    e, t = eer(labels, scores)
    assert e == pytest.approx(25.0) and t == pytest.approx(0.55)


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


def _people_trials(n_people: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """10 target and 40 non-target trials per person; each person's targets shifted by their own
    offset, so people differ from each other as real speakers do."""
    rng = np.random.default_rng(seed)
    labels, scores, people = [], [], []
    for person in range(n_people):
        shift = rng.normal(0, 0.5)
        labels += [1] * 10 + [0] * 40
        scores += list(rng.normal(1.5 + shift, 0.7, 10)) + list(rng.normal(0, 0.7, 40))
        people += [person] * 50
    return np.array(labels), np.array(scores), np.array(people)


def test_weights_count_trials_that_many_times():
    labels, scores, _ = _people_trials(6)
    weights = np.random.default_rng(1).integers(1, 4, labels.size)
    repeated = eer(np.repeat(labels, weights), np.repeat(scores, weights))[0]
    assert eer(labels, scores, weights)[0] == pytest.approx(repeated)
    assert repeated != pytest.approx(eer(labels, scores)[0])


def test_bootstrap_interval_holds_the_estimate_and_narrows_with_more_people():
    few, many = _people_trials(10), _people_trials(80)
    low_few, high_few = eer_interval(*few, resamples=400)
    low_many, high_many = eer_interval(*many, resamples=400)
    assert low_few < eer(*few[:2])[0] < high_few
    assert low_many < eer(*many[:2])[0] < high_many
    assert high_many - low_many < 0.6 * (high_few - low_few)  # about 1/sqrt(8) of the width in theory
    assert eer_interval(*few, resamples=400) == (low_few, high_few)  # seeded
    assert eer_interval(*few, resamples=400, seed=1) != (low_few, high_few)


def test_bootstrap_resamples_people_not_trials():
    """A person's targets share that person's offset: drawing trials one by one (every trial its own
    "person") treats them as independent and understates the spread that 10 people leave."""
    labels, scores, people = _people_trials(10)
    by_trial = eer_interval(labels, scores, np.arange(labels.size), resamples=400)
    by_person = eer_interval(labels, scores, people, resamples=400)
    assert by_person[1] - by_person[0] > by_trial[1] - by_trial[0]


def test_bootstrap_of_a_perfectly_separated_set_is_zero():
    labels = np.array([1, 1, 0, 0, 0, 1, 0, 0])
    scores = np.array([0.9, 0.8, 0.2, 0.1, 0.3, 0.7, 0.0, 0.25])
    assert eer_interval(labels, scores, ["a", "a", "a", "b", "b", "b", "c", "c"]) == (0.0, 0.0)


def test_bootstrap_needs_both_kinds_of_trial():
    with pytest.raises(ValueError, match="both target"):
        eer_interval([1, 1, 1], [0.9, 0.8, 0.2], ["a", "b", "c"], resamples=20)
