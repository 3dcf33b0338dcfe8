"""The generalisation report and the open-set run through the CLI, on the tiny bundle and the
small development set, with values checked against known inputs."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from device.bundle import Bundle
from export.evidence import roles
from scripts.bench import generalisation, open_set, snr_bands
from train.datasets import read_trials

REPO = Path(__file__).resolve().parents[2]
TABLE = {"scoring": "cosine", "llr": {"slope": 10.0, "offset": -5.0}, "eer_threshold": 0.45,
         "table": {"threshold": [0.2, 0.4, 0.5, 0.6], "far": [0.5, 0.1, 0.01, 0.001], "frr": [0.0, 0.02, 0.05, 0.2]}}


def _calibrated(tiny_bundle: Path, tmp_path: Path) -> Bundle:
    out = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, out)
    meta = json.loads((out / "model.json").read_text())
    meta.update(score_calibration=TABLE, policy_default="far1")
    (out / "model.json").write_text(json.dumps(meta))
    return Bundle.load(out)


def test_metrics_at_the_device_threshold(tiny_bundle: Path, tmp_path: Path) -> None:
    bundle = _calibrated(tiny_bundle, tmp_path)  # far1 with one claim -> threshold 0.5
    labels = np.array([1, 1, 1, 1, 0, 0, 0, 0, 0])
    scores = np.array([0.9, 0.7, 0.55, 0.3, 0.6, 0.2, 0.1, 0.0, -0.2])
    people = ["a", "b", "c", "c", "a", "b", "c", "a", "b"]
    m = generalisation.metrics(labels, scores, people, bundle, "cosine")
    assert m["device_threshold"] == 0.5
    assert m["fr_at_device"] == 25.0 and m["fa_at_device"] == pytest.approx(20.0)
    assert m["eer"] == pytest.approx(20.0) and m["n_target"] == 4 and m["n_nontarget"] == 5
    assert m["n_people"] == 3 and m["eer_ci95"][0] < 20.0 < m["eer_ci95"][1]
    assert "fa_at_device" not in generalisation.metrics(labels, scores, people, bundle, "asnorm")


def test_report_on_the_small_dev_set(tiny_bundle: Path, small_dev: Path, tmp_path: Path) -> None:
    out, md = tmp_path / "gen.json", tmp_path / "GEN.md"
    assert generalisation.main(["--model", str(tiny_bundle), "--dev", str(small_dev), "--json", str(out),
                                "--markdown", str(md)]) == 0
    result = json.loads(out.read_text())
    assert result["conditions"] == ["clean", "noisy", "short", "words", "single", "channel"]
    assert "project (cosine)" in result["systems"] and "MFCC mean+std (cosine)" in result["systems"]
    for cond in result["conditions"]:
        trials = read_trials(small_dev / "trials" / "report" / f"{cond}.txt")
        for per in result["systems"].values():
            assert per[cond]["n_target"] == sum(t[0] for t in trials)
            assert per[cond]["n_nontarget"] == sum(1 - t[0] for t in trials)
            assert per[cond]["n_people"] == len({Path(t[2]).parts[-2] for t in trials})
            low, high = per[cond]["eer_ci95"]
            assert 0 <= low <= high <= 100
    intervals = [per[c]["eer_ci95"] for per in result["systems"].values() for c in result["conditions"]]
    assert any(low < high for low, high in intervals)  # 4 people leave a wide interval somewhere
    text = md.read_text()
    assert "| project (cosine) |" in text and "### channel" in text
    cosine = result["systems"]["project (cosine)"]["clean"]
    low, high = cosine["eer_ci95"]
    assert f"| {cosine['eer']:.1f} [{low:.1f}–{high:.1f}] |" in text
    assert f"clean {cosine['n_people']} people, {cosine['n_target']} target / {cosine['n_nontarget']} non-target" in text
    for name in (small_dev / "splits" / "report.txt").read_text().split():
        assert f"| {name} |" in text


def test_tally_counts_each_outcome() -> None:
    """One row of the open-set table from known answers (the CLI's JSON: accepted, speaker,
    decision); attempts are (truth, recordings) and the row carries how many recordings each used."""
    attempts = [("a", [Path("1")]), ("a", [Path("2")]), ("b", [Path("3")]), ("b", [Path("4")]), ("a", [Path("5")]),
                (None, [Path("6")]), (None, [Path("7")]), (None, [Path("8")]), (None, [Path("9")])]
    answers = [{"accepted": True, "decision": "accept", "speaker": "a", "threshold": 0.5},  # correct
               {"accepted": True, "decision": "accept", "speaker": "b", "threshold": 0.5},  # misidentified
               {"accepted": False, "decision": "reject", "speaker": "a", "threshold": 0.5},  # rejected
               {"accepted": True, "decision": "accept", "speaker": "b", "threshold": 0.5},  # correct
               {"accepted": False, "decision": "unsure", "speaker": "a", "threshold": 0.5},  # unsure, not named
               {"accepted": True, "decision": "accept", "speaker": "a", "threshold": 0.5},  # stranger accepted
               {"accepted": False, "decision": "unsure", "speaker": "b", "threshold": 0.5},  # stranger unsure
               {"accepted": False, "decision": "reject", "speaker": "b", "threshold": 0.5},
               {"error": "identify failed"}]  # a stranger's attempt the CLI could not answer
    row = open_set.tally("clean", "far1", 1, attempts, answers)
    assert (row["condition"], row["policy"], row["utterances"], row["threshold"]) == ("clean", "far1", 1, 0.5)
    assert (row["n_genuine"], row["n_unknown"], row["errors"]) == (5, 4, 1)
    assert (row["genuine_correct"], row["misidentified"], row["genuine_rejected"], row["genuine_unsure"]) == \
        (40.0, 20.0, 20.0, 20.0)
    assert (row["unknown_accepted"], row["unknown_unsure"]) == (25.0, 25.0)
    assert open_set.tally("noisy", "far5", 3, attempts, answers)["utterances"] == 3


def test_identify_refuses_missing_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI answering fewer single recordings than asked stops the bench (the answers would no
    longer line up with their attempts); the check moved from tally() into identify()."""
    attempts = [("a", [Path("1.wav")]), (None, [Path("2.wav")])]
    one = json.dumps({"accepted": True, "decision": "accept", "speaker": "a", "threshold": 0.5})

    def device(*args: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.CompletedProcess(args, 2, one + "\n", "2.wav: unreadable")

    monkeypatch.setattr(open_set, "device", device)
    with pytest.raises(SystemExit, match="answered 1 of 2 attempts"):
        open_set.identify(attempts, [], "far1", 1)


def test_open_set_through_the_cli(tiny_bundle: Path, small_dev: Path, tmp_path: Path) -> None:
    if not open_set.DEVICE_PY.exists():
        pytest.fail(f"{open_set.DEVICE_PY} missing: run scripts/setup_venvs.sh", pytrace=False)
    out = tmp_path / "open.json"
    assert open_set.main(["--model", str(tiny_bundle), "--dev", str(small_dev), "--enrolled", "2",
                          "--policies", "eer", "--conditions", "clean", "--sessions", "1,2", "--session-policies", "eer",
                          "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert (result["enrolled"], result["unknown"]) == (2, 2)
    # enrolment and test recordings are the dev set's roles (utterances.csv): the counts follow from them
    people = roles(small_dev, "report")
    enrolled, unknown = result["enrolled_people"], result["unknown_people"]
    assert sorted(enrolled + unknown) == sorted(people)
    assert result["per_person"] == len(people[enrolled[0]].enroll)
    assert set(result["enroll_samples_refused"]) == set(enrolled)
    rows = {row["utterances"]: row for row in result["rows"]}
    assert sorted(rows) == [1, 2] and len(result["rows"]) == 2
    for n, row in rows.items():
        assert row["policy"] == "eer" and row["condition"] == "clean"
        assert row["n_genuine"] == sum(len(people[p].test) // n for p in enrolled) > 0
        assert row["n_unknown"] == sum(len(people[p].test) // n for p in unknown) > 0
        assert row["errors"] == 0
        assert row["genuine_correct"] + row["misidentified"] + row["genuine_rejected"] + row["genuine_unsure"] == \
            pytest.approx(100.0)
        assert 0 <= row["unknown_unsure"] <= 100 - row["unknown_accepted"]


def test_snr_bands_fit_on_one_half_and_read_on_the_other(tiny_bundle: Path, small_dev: Path, tmp_path: Path) -> None:
    out = tmp_path / "snr.json"
    assert snr_bands.main(["--model", str(tiny_bundle), "--dev", str(small_dev), "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert (result["fit"], result["read"]) == ("calib", "report")
    read = [t for c in snr_bands.CONDITIONS for t in read_trials(small_dev / "trials" / "report" / f"{c}.txt")]
    # every read trial falls in exactly one band
    assert sum(r["targets"] for r in result["bands"]) == sum(t.label for t in read) > 0
    assert sum(r["nontargets"] for r in result["bands"]) == sum(1 - t.label for t in read) > 0
    assert [r["snr_db"] for r in result["bands"]] == [list(b) for b in snr_bands.BANDS]
    for row in result["bands"]:
        assert 0 <= row["genuine_accepted"] <= 100 and 0 <= row["false_accepts_at_clean_threshold"] <= 100
