"""The development set: who is in it, how the halves and trial lists are made, and that no
reserved source or training speaker of the shipped model slips into the demo or the tests."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import numpy as np
import pytest

from tests.voices import RHVOICE_VOICES
from train import corpus, devset
from train.datasets import read_trials

REPO = Path(__file__).resolve().parents[2]
# Kept for the product's acceptance tests: never a source of audio here.
RESERVED = re.compile(r"asterisk|ktuberling|\bflite\b|festival|festvox|pico2wave|libttspico|\bsvox\b|piper",
                      re.IGNORECASE)
BUILDERS = ["train/corpus.py", "train/devset.py", "train/espeak_voices.py", "train/channels.py", "train/sentences.py",
            "train/augment.py", "scripts/setup_apt.sh", "scripts/apt_components.sh", "scripts/make_corpus.sh",
            "scripts/make_devset.sh", "scripts/make_demo_clips.sh", "scripts/install_pi.sh", "requirements-train.txt",
            "requirements-device.txt", "scripts/bench/setup_peers.sh"]


@pytest.mark.parametrize("path", BUILDERS)
def test_no_reserved_source_in_any_builder(path: str) -> None:
    text = (REPO / path).read_text(encoding="utf-8")
    assert RESERVED.findall(text) == [], f"{path} names a reserved source"


def _training_speakers() -> set[str]:
    meta = json.loads((REPO / "models/default/model.json").read_text())
    speakers = meta["trained_on"].get("speakers")
    assert speakers, "models/default/model.json must list its training speakers (trained_on.speakers)"
    return set(speakers)


def _halves() -> dict[str, list[str]]:
    """The development set's halves as scripts/make_devset.sh builds them (seed 0) on this machine."""
    people = [p for p, _ in devset.rhvoice_people()] + [p for p, _ in devset.klettres_people()]
    return devset.split_halves(people, 0)


def test_demo_voices_are_report_half_people_never_trained_on() -> None:
    voices = {f"rh-{p.name.split('-')[0]}" for p in (REPO / "device/demo_clips").glob("*.flac")}
    assert voices == {"rh-alan", "rh-lyubov", "rh-mikhail", "rh-victoria"}  # RHVoice: the held-out engine
    assert voices <= set(_halves()["report"])  # the calibration half selects and calibrates the model
    assert voices.isdisjoint(_training_speakers())


def test_test_voices_are_exactly_the_report_half_rhvoice_people_in_their_script() -> None:
    report = set(_halves()["report"])
    expected = {v.voice: v.script for v in corpus.rhvoice_voices() if v.speaker in report}
    assert RHVOICE_VOICES == expected
    assert len(expected) >= 12 and {"latin", "cyrillic"} <= set(expected.values())


def test_test_voices_of_the_shipped_model_are_not_its_training_speakers(small_dev: Path) -> None:
    """Tests that enroll or reject voices with models/default take them from the development set
    (and the golden clip is RHVoice's)."""
    with open(small_dev / "speakers.csv", newline="") as f:
        people = {row["speaker"] for row in csv.DictReader(f)}
    assert people and people.isdisjoint(_training_speakers())
    assert all(s.startswith(("mb-", "es-")) for s in _training_speakers())


def test_small_devset_make_up(small_dev: Path) -> None:
    summary = json.loads((small_dev / "summary.json").read_text())
    assert summary["people"] == {"rhvoice": 4, "klettres": 4}
    calib = (small_dev / "splits/calib.txt").read_text().split()
    report = (small_dev / "splits/report.txt").read_text().split()
    assert len(calib) == len(report) == 4 and not set(calib) & set(report)
    for half in ("calib", "report"):  # two of each source in each half
        assert sum(n.startswith("rh-") for n in (calib if half == "calib" else report)) == 2


@pytest.mark.parametrize("half", ["calib", "report"])
def test_trial_lists_stay_inside_their_half_and_exist(small_dev: Path, half: str) -> None:
    members = set((small_dev / "splits" / f"{half}.txt").read_text().split())
    for cond in devset.CONDITIONS:
        trials = read_trials(small_dev / "trials" / half / f"{cond}.txt")
        assert trials, cond
        for label, enroll, test in trials:
            spk_e, spk_t = (Path(p).parts[-2] for p in (enroll, test))
            assert {spk_e, spk_t} <= members
            assert label == int(spk_e == spk_t)
            assert (small_dev / enroll).is_file() and (small_dev / test).is_file()
        if cond in ("words", "single"):
            assert all(Path(t[2]).parts[-2].startswith("kl-") for t in trials)


def test_channel_trials_share_the_channel_in_about_half(small_dev: Path) -> None:
    trials = read_trials(small_dev / "trials/report/channel.txt")
    same = [t for t in trials if t[1].startswith("_channel/")]
    assert all(Path(t[1]).parts[1] == Path(t[2]).parts[1] for t in same)
    assert 0.25 < len(same) / len(trials) < 0.75
    assert any(t[0] == 0 for t in same) and any(t[0] == 1 for t in same)


def test_pair_trials_ratio_and_hard_nontargets() -> None:
    people = [devset.Person(f"p{i}", "rhvoice" if i < 6 else "klettres", "", "", "", "en" if i % 2 else "de",
                            "male" if i < 3 else "female", "") for i in range(9)]
    utts = {p.speaker: [f"{p.speaker}/{k:03d}.wav" for k in range(6)] for p in people}
    trials = devset.pair_trials(people, utts, utts, np.random.default_rng(0))
    targets = [t for t in trials if t[0] == 1]
    assert len(targets) == 10 * 9
    assert 7 <= (len(trials) - len(targets)) / len(targets) <= 10  # about 1:10, duplicates dropped
    by = {p.speaker: p for p in people}
    non = [(by[t[1].split("/")[0]], by[t[2].split("/")[0]]) for t in trials if t[0] == 0]
    same_group = np.mean([(a.source, a.gender) == (b.source, b.gender) for a, b in non])
    assert same_group > 0.4  # a third by design, plus the chance matches of the other two thirds


def test_words_utterances_are_two_to_four_seconds_of_distinct_clips() -> None:
    rng = np.random.default_rng(3)
    clips = [np.full(int(devset.SR * rng.uniform(0.4, 0.9)), i + 1, np.float32) for i in range(10)]
    for utt in devset.words_utterances(clips, 5, np.random.default_rng(1)):
        assert 2.0 * devset.SR <= utt.size <= 4.0 * devset.SR
        levels = [v for v in np.unique(np.round(utt)) if v >= 1]
        assert len(levels) >= 3  # several clips, each used once
    again = devset.words_utterances(clips, 5, np.random.default_rng(1))
    assert all(np.array_equal(a, b) for a, b in zip(again, devset.words_utterances(clips, 5, np.random.default_rng(1))))
