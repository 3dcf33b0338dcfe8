"""Synthetic corpus: byte-identical rebuilds, speaker-disjoint splits, valid trial lists."""

from __future__ import annotations

import csv
import hashlib
from collections import Counter
from pathlib import Path

import pytest
import soundfile as sf

from tests.helpers import require_tool
from train.corpus import Voice, build, make_trials, split_speakers
from train.datasets import list_utterances, read_split, read_trials

ENGINES = ("sox", "espeak-ng", "mbrola")


@pytest.fixture(scope="module")
def speech_engines() -> None:
    for tool in ENGINES:
        require_tool(tool)


needs_engines = pytest.mark.usefixtures("speech_engines")


def _digests(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory, speech_engines: None) -> Path:
    root = tmp_path_factory.mktemp("corpus") / "a"
    build(root, speakers=3, utts=4, seed=5, log=lambda _: None, espeak_voices_n=2)
    return root


def _fake_voices(n: int) -> list[Voice]:
    return [Voice(f"s{i:02d}", ("mbrola", "rhvoice")[i % 2], f"v{i}", "en", ("male", "female")[(i // 2) % 2])
            for i in range(n)]


@needs_engines
def test_rebuild_is_byte_identical(corpus: Path, tmp_path: Path) -> None:
    again = tmp_path / "b"
    build(again, speakers=3, utts=4, seed=5, log=lambda _: None, espeak_voices_n=2)
    first, second = _digests(corpus), _digests(again)
    assert len(first) > 12 and first == second


@needs_engines
def test_layout_audio_format_and_metadata(corpus: Path) -> None:
    with (corpus / "speakers.csv").open() as f:
        speakers = list(csv.DictReader(f))
    assert len(speakers) == 3 and [s["engine"] for s in speakers] == ["mbrola", "espeak", "mbrola"]
    assert all(s["gender"] in ("male", "female") for s in speakers)
    utts = list_utterances(corpus)
    assert len(utts) == 12 and {u.speaker for u in utts} == {s["speaker"] for s in speakers}
    for u in utts:
        info = sf.info(str(u.path))
        assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
        assert 1.0 <= info.duration <= 6.0
    with (corpus / "utterances.csv").open() as f:
        texts = [r["text"] for r in csv.DictReader(f)]
    assert len(set(texts)) == len(texts)


@needs_engines
def test_splits_are_disjoint_and_cover_every_speaker(corpus: Path) -> None:
    splits = {name: read_split(corpus / "splits" / f"{name}.txt") for name in ("train", "val", "test")}
    flat = [s for spks in splits.values() for s in spks]
    assert len(flat) == len(set(flat))
    assert set(flat) == {u.speaker for u in list_utterances(corpus)}
    assert len(splits["test"]) >= 2


@needs_engines
def test_trial_lists_are_valid(corpus: Path) -> None:
    test_spks = set(read_split(corpus / "splits" / "test.txt"))
    lists = {cond: read_trials(corpus / f"trials_{cond}.txt") for cond in ("clean", "noisy", "short")}
    assert len({len(t) for t in lists.values()}) == 1
    for cond, trials in lists.items():
        labels = Counter(t.label for t in trials)
        assert labels[1] > 0 and labels[0] > 0
        for t in trials:
            assert (corpus / t.enroll).is_file() and (corpus / t.test).is_file()
            assert not t.enroll.startswith("_")
            enroll_spk, test_spk = t.enroll.split("/")[0], t.test.split("/")[-2]
            assert {enroll_spk, test_spk} <= test_spks
            assert (enroll_spk == test_spk) == (t.label == 1)
            assert t.test.startswith({"clean": test_spk, "noisy": "_noisy/", "short": "_short/"}[cond])
    short = [sf.info(str(corpus / t.test)).duration for t in lists["short"]]
    assert max(short) <= 1.5 + 1e-3


def test_refuses_to_overwrite_a_folder_that_is_not_a_corpus(tmp_path: Path) -> None:
    (tmp_path / "precious.txt").write_text("keep me")
    with pytest.raises(SystemExit, match="refusing"):
        build(tmp_path, speakers=3, utts=4)
    assert (tmp_path / "precious.txt").exists()


def test_split_is_stratified_and_seeded() -> None:
    voices = _fake_voices(90)
    splits = split_speakers(voices, seed=0)
    assert splits == split_speakers(voices, seed=0) and splits != split_speakers(voices, seed=1)
    sizes = {k: len(v) for k, v in splits.items()}
    assert sizes == {"train": 63, "val": 9, "test": 18}
    group = {v.speaker: (v.engine, v.gender) for v in voices}
    per_group = Counter(group[s] for s in splits["test"])
    assert set(per_group) == set(group.values()) and max(per_group.values()) - min(per_group.values()) <= 1


def test_trials_balance_and_same_group_nontargets() -> None:
    voices = _fake_voices(12)
    utts = {v.speaker: [f"{v.speaker}/{i:03d}.wav" for i in range(24)] for v in voices}
    trials = make_trials(voices, utts, seed=0)
    assert trials == make_trials(voices, utts, seed=0)
    group = {v.speaker: (v.engine, v.gender) for v in voices}
    targets = [t for t in trials if t[0] == 1]
    nontargets = [t for t in trials if t[0] == 0]
    assert len(targets) == 30 * 12 and 55 * 12 <= len(nontargets) <= 60 * 12
    assert len(set(trials)) == len(trials)
    same_group = sum(group[e.split("/")[0]] == group[t.split("/")[0]] for _, e, t in nontargets)
    assert same_group >= 0.4 * len(nontargets)
