"""The development set: who is in it, how the halves and trial lists are made, and that no
reserved source or training speaker of the shipped model slips into the demo or the tests."""

from __future__ import annotations

import csv
import hashlib
import json
import re
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from tests.voices import RHVOICE_VOICES
from train import channels, corpus, devset
from train.datasets import read_trials

REPO = Path(__file__).resolve().parents[2]
# Kept for the product's acceptance tests: never a source of audio here.
VARIANT = re.compile(r"^(_noisy/|_short/|_channel/[^/]+/)")  # a condition's copy of a recording
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


def _people(n: int) -> list[devset.Person]:
    return [devset.Person(f"p{i}", "rhvoice" if i < 6 else "klettres", "", "", "", "en" if i % 2 else "de",
                          "male" if i < 3 else "female", "") for i in range(n)]


def _files(people: list[devset.Person], first: int, count: int) -> dict[str, list[str]]:
    return {p.speaker: [f"{p.speaker}/{k:03d}.wav" for k in range(first, first + count)] for p in people}


def test_pair_trials_ratio_and_hard_nontargets() -> None:
    people = _people(9)
    enrol, test = _files(people, 0, 4), _files(people, 4, 8)  # the full build's roles
    trials = devset.pair_trials(people, enrol, test, np.random.default_rng(0))
    assert {t[1] for t in trials} <= {f for fs in enrol.values() for f in fs}
    assert {t[2] for t in trials} <= {f for fs in test.values() for f in fs}
    targets = [t for t in trials if t[0] == 1]
    assert len(targets) == 10 * 9
    assert 7 <= (len(trials) - len(targets)) / len(targets) <= 10  # about 1:10, duplicates dropped
    by = {p.speaker: p for p in people}
    non = [(by[t[1].split("/")[0]], by[t[2].split("/")[0]]) for t in trials if t[0] == 0]
    same_group = np.mean([(a.source, a.gender) == (b.source, b.gender) for a, b in non])
    assert same_group > 0.4  # a third by design, plus the chance matches of the other two thirds


def test_pair_trials_never_enrolls_a_voice_heard_in_the_test() -> None:
    people = _people(4)
    enrol, test = _files(people, 0, 2), _files(people, 2, 3)
    heard = {"p0/002.wav": {"p1", "p2", "p3"}, "p0/003.wav": {"p1"}, "p1/002.wav": {"p0"}}
    trials = devset.pair_trials(people, enrol, test, np.random.default_rng(0), heard=heard)
    impostors = [(t[1].split("/")[0], t[2]) for t in trials if t[0] == 0]
    assert impostors and all(spk not in heard.get(test_file, ()) for spk, test_file in impostors)
    assert not any(test_file == "p0/002.wav" for _, test_file in impostors)  # everyone else is heard in it
    assert sum(t[0] for t in trials if t[2].startswith("p0/")) == 2 * 3  # its own targets are all kept


def test_words_utterances_are_two_to_four_seconds_of_distinct_clips() -> None:
    rng = np.random.default_rng(3)
    clips = [np.full(int(devset.SR * rng.uniform(0.4, 0.9)), i + 1, np.float32) for i in range(10)]
    for utt, used in devset.words_utterances(clips, 5, np.random.default_rng(1)):
        assert 2.0 * devset.SR <= utt.size <= 4.0 * devset.SR
        levels = [int(v) for v in np.unique(np.round(utt)) if v >= 1]
        assert len(levels) >= 3 and levels == sorted(i + 1 for i in used)  # several clips, each named, each once
    again = devset.words_utterances(clips, 5, np.random.default_rng(1))
    for (a, used_a), (b, used_b) in zip(again, devset.words_utterances(clips, 5, np.random.default_rng(1))):
        assert np.array_equal(a, b) and used_a == used_b


def test_the_recorded_background_voices_are_the_ones_in_the_noise() -> None:
    """Each voice a pure tone of its own: the noise's spectrum shows exactly the voices named."""
    t = np.arange(devset.SR) / devset.SR
    tones = [200.0 * (k + 1) for k in range(8)]
    voices = [np.sin(2 * np.pi * f * t).astype(np.float32) for f in tones]
    sizes = set()
    for seed in range(12):
        noise, heard = channels.household_noise_heard(devset.SR, np.random.default_rng(seed), voices, "babble")
        spectrum = np.abs(np.fft.rfft(noise))
        loud = {k for k, f in enumerate(tones) if spectrum[int(f)] > 0.1 * spectrum.max()}
        assert loud == set(heard) and 3 <= len(heard) <= 6
        sizes.add(len(heard))
        again = channels.household_noise(devset.SR, np.random.default_rng(seed), voices, "babble")
        assert np.array_equal(noise, again)  # the same draws as the training side's household_noise
    assert len(sizes) > 1
    assert len(channels.household_noise_heard(devset.SR, np.random.default_rng(0), voices, "tv")[1]) == 1
    assert channels.household_noise_heard(devset.SR, np.random.default_rng(0), voices, "appliance")[1] == []


def test_recording_groups_join_clips_that_hold_the_same_samples() -> None:
    rng = np.random.default_rng(5)

    def noise(n: int) -> np.ndarray:
        return rng.normal(0, 0.2, n).astype(np.float32)

    shared = noise(3200)  # 0.2 s recorded once, spliced into three clips at different places
    clips = [np.concatenate([noise(1000), shared]), np.concatenate([shared[800:2800], noise(3000)]), noise(4000),
             np.concatenate([noise(500), shared[:1600], noise(700)]), 0.5 * shared]
    assert sorted(map(sorted, devset.recording_groups(clips))) == [[0, 1, 3], [2], [4]]  # a louder copy is not the same


def test_split_pool_keeps_groups_whole_and_halves_the_clips() -> None:
    groups = [[0, 3, 5], [1], [2], [4], [6], [7, 8], [9], [10], [11]]
    enrol, test = devset.split_pool(groups, np.random.default_rng(2))
    assert sorted(enrol + test) == list(range(12)) and abs(len(enrol) - len(test)) <= 3
    assert all(set(g) <= set(enrol) or set(g) <= set(test) for g in groups)
    assert (enrol, test) != devset.split_pool(groups, np.random.default_rng(3))


# ---------------------------------------------------------------- leaks, on the built set

def _utterances(dev: Path) -> dict[str, dict[str, str]]:
    """utterances.csv by path."""
    with open(dev / "utterances.csv", newline="", encoding="utf-8") as f:
        return {row["path"]: row for row in csv.DictReader(f)}


def _samples(path: Path) -> np.ndarray:
    return sf.read(path, dtype="int16")[0]


def _shares_audio(a: np.ndarray, b: np.ndarray, chunk: int = 1600) -> bool:
    """Whether any 0.1 s of `a` occurs sample for sample inside `b`. Any stretch of 0.2 s or more
    holds a whole chunk; quiet chunks (pauses, faint noise) are skipped, they could match by chance."""
    hay = b.tobytes()
    for start in range(0, a.size - chunk + 1, chunk):
        piece = a[start: start + chunk]
        if np.unique(piece).size < 200:
            continue
        at = hay.find(piece.tobytes())
        while at >= 0 and at % 2:  # a match must start on a sample, not between the bytes of one
            at = hay.find(piece.tobytes(), at + 1)
        if at >= 0:
            return True
    return False


def test_roles_are_fixed_per_person(small_dev: Path) -> None:
    rows = _utterances(small_dev)
    summary = json.loads((small_dev / "summary.json").read_text())
    n_enrol, n_test = summary["per_person"]["enroll"], summary["per_person"]["test"]
    assert (n_enrol, n_test) == devset.ROLE_COUNTS[True] and n_test >= 3  # sessions of up to 3 test utterances
    speakers = {r["speaker"] for r in rows.values()}
    assert len(speakers) == 8
    for spk in speakers:
        spoken = sorted((p, r["role"]) for p, r in rows.items() if r["speaker"] == spk and r["role"] != "single")
        assert spoken == [(f"{spk}/{i:03d}.wav", "enroll" if i < n_enrol else "test") for i in range(n_enrol + n_test)]
    singles = [p for p, r in rows.items() if r["role"] == "single"]
    assert len(singles) == 4 * 3 and all(p.startswith("_single/kl-") for p in singles)
    assert all((small_dev / p).is_file() for p in rows)


@pytest.mark.parametrize("half", ["calib", "report"])
def test_every_trial_pairs_an_enrolment_file_with_a_test_file(small_dev: Path, half: str) -> None:
    rows = _utterances(small_dev)
    for cond in devset.CONDITIONS:
        for _, enroll, test in read_trials(small_dev / "trials" / half / f"{cond}.txt"):
            e, t = rows[VARIANT.sub("", enroll)], rows[VARIANT.sub("", test)]
            assert (e["role"], t["role"]) == ("enroll", "single" if cond == "single" else "test"), (cond, enroll, test)
            assert e["half"] == t["half"] == half


def test_no_klettres_recording_is_on_both_sides_of_a_trial(small_dev: Path) -> None:
    """Named clips first, then the audio itself: no 0.1 s of a test utterance or single clip occurs
    in any enrolment utterance of the same person. The audio check is shown to find shared clips
    where they are allowed: a single clip inside a test utterance made with it."""
    rows = _utterances(small_dev)
    people = {r["speaker"] for r in rows.values() if r["speaker"].startswith("kl-")}
    assert len(people) == 4
    found_allowed = 0
    for spk in people:
        own = [r for r in rows.values() if r["speaker"] == spk]
        enrol = [r for r in own if r["role"] == "enroll"]
        test = [r for r in own if r["role"] in ("test", "single")]
        assert all(r["clips"] for r in own) and len(enrol) == 2 and len(test) == 3 + 3
        assert not {c for r in enrol for c in r["clips"].split(";")} & {c for r in test for c in r["clips"].split(";")}
        enrol_audio = [_samples(small_dev / r["path"]) for r in enrol]
        for r in test:
            audio = _samples(small_dev / r["path"])
            assert not any(_shares_audio(audio, e) for e in enrol_audio), r["path"]
        for single in (r for r in test if r["role"] == "single"):
            clip = _samples(small_dev / single["path"])
            for words in (r for r in test if r["role"] == "test" and single["clips"] in r["clips"].split(";")):
                assert _shares_audio(clip, _samples(small_dev / words["path"]))
                found_allowed += 1
    assert found_allowed >= 1


def test_babble_is_of_the_same_half_and_never_of_the_trial_people(small_dev: Path) -> None:
    rows = _utterances(small_dev)
    half_of = {r["speaker"]: r["half"] for r in rows.values()}
    babble = {p: set(filter(None, r["babble"].split(";"))) for p, r in rows.items()}
    assert sum(map(bool, babble.values())) >= 5
    for path, voices in babble.items():
        assert rows[path]["speaker"] not in voices
        assert {half_of[v] for v in voices} <= {rows[path]["half"]}
        assert not voices or rows[path]["role"] != "single"  # single clips have no noisy copy
    nontargets = 0
    for half in ("calib", "report"):
        for label, enroll, test in read_trials(small_dev / "trials" / half / "noisy.txt"):
            heard = babble[VARIANT.sub("", test)]
            assert test.startswith("_noisy/") and not heard & {rows[enroll]["speaker"], rows[VARIANT.sub("", test)]["speaker"]}
            nontargets += 1 - label
    assert nontargets >= 40


def test_summary_counts_people_and_trials(small_dev: Path) -> None:
    counts = json.loads((small_dev / "summary.json").read_text())["trials"]
    assert set(counts) == {f"{h}/{c}" for h in devset.HALVES for c in devset.CONDITIONS}
    for key, count in counts.items():
        trials = read_trials(small_dev / "trials" / f"{key}.txt")
        people = {Path(p).parts[-2] for t in trials for p in t[1:]}
        assert count == {"people": len(people), "targets": sum(t[0] for t in trials),
                         "nontargets": sum(1 - t[0] for t in trials)}
        assert count["people"] == (2 if key.endswith(("words", "single")) else 4)


def _digests(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and p.name not in (".built", "summary.json")}


def test_rebuild_is_identical(small_dev: Path, tmp_path: Path) -> None:
    summary = devset.build(tmp_path / "again", small=True)
    first, second = _digests(small_dev), _digests(tmp_path / "again")
    assert len(first) > 300 and first == second
    built = json.loads((small_dev / "summary.json").read_text())
    assert {k: v for k, v in built.items() if k != "seconds_taken"} == {k: v for k, v in summary.items()
                                                                           if k != "seconds_taken"}
