"""Calibrated decisions on the device: the threshold table, household (N-aware) policies, the
bundle's schema handling."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from device.bundle import Bundle, BundleError
from device.calibration import Calibration, CalibrationError, EvidenceCalibration, household_target

# A table as export writes it: thresholds up, per-comparison false accepts down, false rejects up.
TABLE = {"scoring": "cosine", "llr": {"slope": 10.0, "offset": -5.0}, "eer_threshold": 0.45,
         "table": {"threshold": [0.2, 0.4, 0.5, 0.6, 0.8], "far": [0.5, 0.1, 0.01, 0.001, 0.0001],
                   "frr": [0.0, 0.02, 0.05, 0.2, 0.6]}}


def cal() -> Calibration:
    return Calibration.from_dict(TABLE)


def test_threshold_for_a_tabled_false_accept_rate_is_the_tabled_threshold() -> None:
    assert cal().threshold_for_far(0.01) == pytest.approx(0.5)
    assert cal().threshold_for_far(0.001) == pytest.approx(0.6)


def test_threshold_interpolates_in_log_rate_and_clamps_at_the_ends() -> None:
    # sqrt(0.01 * 0.001) lies halfway between 0.5 and 0.6 in log rate
    assert cal().threshold_for_far(float(np.sqrt(1e-5))) == pytest.approx(0.55)
    assert cal().threshold_for_far(0.9) == pytest.approx(0.2)
    assert cal().threshold_for_far(1e-9) == pytest.approx(0.8)


def test_household_threshold_rises_with_the_number_enrolled() -> None:
    c = cal()
    one, ten = c.threshold_for_household(0.01, 1), c.threshold_for_household(0.01, 10)
    assert one == pytest.approx(0.5)
    # ten people: each comparison may false-accept 1 - 0.99 ** 0.1 = 0.1005 %, about 0.001
    assert ten == pytest.approx(c.threshold_for_far(1 - 0.99 ** 0.1))
    assert 0.59 < ten < 0.61
    assert c.rates(ten, 10)["stranger_accepted"] == pytest.approx(0.01, rel=1e-3)


def test_rates_read_the_table() -> None:
    rates = cal().rates(0.5, enrolled=1)
    assert rates == pytest.approx({"stranger_accepted": 0.01, "false_accept": 0.01, "false_reject": 0.05})
    assert cal().llr(0.5) == pytest.approx(0.0)


@pytest.mark.parametrize(("policy", "target"), [("far1", 0.01), ("far0.5", 0.005), ("far5", 0.05),
                                                ("eer", None), ("farx", None), ("far100", None)])
def test_household_target_names(policy: str, target: float | None) -> None:
    assert household_target(policy) == target


@pytest.mark.parametrize("broken", [
    {"table": {"threshold": [0.5, 0.4], "far": [0.1, 0.01], "frr": [0.0, 0.1]}},  # thresholds not ascending
    {"table": {"threshold": [0.4, 0.5], "far": [0.01, 0.1], "frr": [0.0, 0.1]}},  # far rising
    {"table": {"threshold": [0.4, 0.5], "far": [0.1], "frr": [0.0, 0.1]}},  # ragged
    {"scoring": "plda"},
    {"llr": {}},
])
def test_malformed_calibration_is_refused(broken: dict) -> None:
    with pytest.raises(CalibrationError):
        Calibration.from_dict({**TABLE, **broken})


def _bundle_copy(tiny_bundle: Path, tmp_path: Path, edit) -> Path:
    out = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, out)
    meta = json.loads((out / "model.json").read_text())
    edit(meta)
    (out / "model.json").write_text(json.dumps(meta))
    return out


def test_bundle_threshold_follows_the_calibration_and_the_number_enrolled(tiny_bundle: Path, tmp_path: Path) -> None:
    path = _bundle_copy(tiny_bundle, tmp_path, lambda m: m.update(score_calibration=TABLE))
    bundle = Bundle.load(path)
    assert bundle.scoring == "cosine"
    assert bundle.threshold("far1") == pytest.approx(0.5)
    assert bundle.threshold("far1", enrolled=10) > bundle.threshold("far1", enrolled=2) > bundle.threshold("far1")
    assert bundle.threshold("eer") == pytest.approx(0.45)
    assert bundle.threshold("0.3") == 0.3
    point = bundle.operating_point("far1", 1)
    assert point["threshold"] == pytest.approx(0.5) and point["expected"]["false_reject"] == pytest.approx(0.05)


def test_schema_1_bundle_loads_with_its_own_thresholds(tiny_bundle: Path, tmp_path: Path) -> None:
    def old(meta: dict) -> None:
        meta["schema"] = 1
        meta.pop("score_calibration", None)
        meta["thresholds"] = {"asnorm": {"far1": 2.5, "eer": 1.5}, "cosine": {"far1": 0.7, "eer": 0.5}}

    bundle = Bundle.load(_bundle_copy(tiny_bundle, tmp_path, old))
    assert bundle.calibration is None and bundle.scoring == "asnorm"
    assert bundle.threshold("far1", enrolled=12) == 2.5  # no calibration: not N-aware
    assert bundle.operating_point("far1")["expected"] is None


def test_future_schema_and_bad_calibration_are_refused(tiny_bundle: Path, tmp_path: Path) -> None:
    with pytest.raises(BundleError, match="schema 3"):
        Bundle.load(_bundle_copy(tiny_bundle, tmp_path / "a", lambda m: m.update(schema=3)))
    with pytest.raises(BundleError, match="score_calibration"):
        Bundle.load(_bundle_copy(tiny_bundle, tmp_path / "b", lambda m: m.update(score_calibration={"scoring": "x"})))


# Two utterances fused: strangers' scores narrow, so each false-accept rate is reached lower down.
TWO = {**TABLE, "table": {**TABLE["table"], "threshold": [0.15, 0.3, 0.4, 0.5, 0.7]}}
EVIDENCE = {**TABLE, "by_utterances": {"2": TWO}, "same_speaker": {"threshold": 0.3}}


def test_evidence_levels_are_read_by_the_number_of_utterances() -> None:
    ev = EvidenceCalibration.from_dict(EVIDENCE)
    assert sorted(ev.levels) == [1, 2] and ev.same_speaker == 0.3
    assert ev.at(1).threshold_for_far(0.01) == pytest.approx(0.5)
    assert ev.at(2).threshold_for_far(0.01) == pytest.approx(0.4)
    assert ev.at(7) is ev.at(2)  # more evidence than any level: the largest level's table
    assert EvidenceCalibration.from_dict(TABLE).same_speaker is None


@pytest.mark.parametrize("by, message", [({"x": TWO}, "not a number"), ({"1": TWO}, "2 or more"),
                                         ({"2": {**TWO, "scoring": "asnorm"}}, "with cosine scoring")])
def test_malformed_evidence_levels_are_refused(by: dict, message: str) -> None:
    with pytest.raises(CalibrationError, match=message):
        EvidenceCalibration.from_dict({**TABLE, "by_utterances": by})


def test_bundle_threshold_follows_the_evidence_and_the_unsure_band_lies_below(tiny_bundle: Path, tmp_path: Path) -> None:
    bundle = Bundle.load(_bundle_copy(tiny_bundle, tmp_path, lambda m: m.update(score_calibration=EVIDENCE)))
    assert bundle.threshold("far1", utterances=1) == pytest.approx(0.5)
    assert bundle.threshold("far1", utterances=2) == pytest.approx(0.4)
    assert bundle.threshold("far1", utterances=3) == pytest.approx(0.4)
    assert bundle.same_speaker_threshold == 0.3
    # "unsure" from where a stranger gets through one time in ten, up to the accept threshold
    assert bundle.unsure_threshold(0.5, 0.1, enrolled=1, utterances=1) == pytest.approx(0.4)
    assert bundle.unsure_threshold(0.5, 0.1, enrolled=1, utterances=2) == pytest.approx(0.3)
    assert bundle.unsure_threshold(0.5, 0.0) == 0.5  # no band
    assert bundle.unsure_threshold(0.35, 0.1) == 0.35  # never above the accept threshold
    assert bundle.operating_point("far1", 1, utterances=2)["threshold"] == pytest.approx(0.4)
