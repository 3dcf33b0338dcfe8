"""Dataset layout detection, split and trial-list parsing on tiny fake trees."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from device.audio import save_wav
from train.datasets import DatasetError, Trial, Utterance, detect_layout, list_utterances, read_split, read_trials


def _wav(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(1600) / 16000
    save_wav(path, (0.1 * np.sin(2 * np.pi * 200 * t)).astype(np.float32))
    return path


def test_folder_per_speaker_skips_corpus_extras(tmp_path: Path) -> None:
    for rel in ("mb-de1/000.wav", "mb-de1/001.wav", "rh-alan/000.wav", "_noisy/rh-alan/000.wav",
                "_short/rh-alan/000.wav", "splits/x.wav"):
        _wav(tmp_path / rel)
    (tmp_path / "rh-alan" / "notes.txt").write_text("not audio")
    assert detect_layout(tmp_path) == "folder"
    assert list_utterances(tmp_path) == [Utterance("mb-de1", tmp_path / "mb-de1/000.wav"),
                                         Utterance("mb-de1", tmp_path / "mb-de1/001.wav"),
                                         Utterance("rh-alan", tmp_path / "rh-alan/000.wav")]


def test_librispeech_layout(tmp_path: Path) -> None:
    for rel in ("103/1240/103-1240-0000.flac", "103/1241/103-1241-0001.flac", "19/198/19-198-0000.flac"):
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(str(path), np.full(800, 0.1, dtype=np.float32), 16000)
    (tmp_path / "103" / "1240" / "103-1240.trans.txt").write_text("103-1240-0000 HELLO")
    assert detect_layout(tmp_path) == "librispeech"
    utts = list_utterances(tmp_path)
    assert [u.speaker for u in utts] == ["103", "103", "19"]
    assert all(u.path.suffix == ".flac" for u in utts)


def test_a_librispeech_root_with_its_subset_folders(tmp_path: Path) -> None:
    """As the archives unpack: LibriSpeech/train-clean-100/SPK/CHAPTER/SPK-CHAPTER-NNNN.flac."""
    for rel in ("train-clean-100/103/1240/103-1240-0000.flac", "train-clean-100/19/198/19-198-0000.flac",
                "dev-clean/84/121123/84-121123-0000.flac", "train-other-500/20/205/20-205-0001.flac"):
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(str(path), np.full(800, 0.1, dtype=np.float32), 16000)
    assert detect_layout(tmp_path) == "librispeech"
    utts = list_utterances(tmp_path)
    assert [(u.speaker, u.path.name) for u in utts] == [("103", "103-1240-0000.flac"), ("19", "19-198-0000.flac"),
                                                       ("20", "20-205-0001.flac"), ("84", "84-121123-0000.flac")]


def test_voxceleb_layout(tmp_path: Path) -> None:
    for rel in ("id10001/1zcIwhmdeo4/00001.wav", "id10001/7gWzIy6yIIk/00002.wav", "id10002/xTV-jFAUKcw/00001.wav"):
        _wav(tmp_path / rel)
    assert detect_layout(tmp_path) == "voxceleb"
    assert [u.speaker for u in list_utterances(tmp_path)] == ["id10001", "id10001", "id10002"]


def test_empty_or_missing_root_explains(tmp_path: Path) -> None:
    (tmp_path / "spk").mkdir()
    with pytest.raises(DatasetError, match="no speaker folders"):
        list_utterances(tmp_path)
    with pytest.raises(DatasetError, match="not a directory"):
        list_utterances(tmp_path / "missing")


def test_read_split(tmp_path: Path) -> None:
    path = tmp_path / "train.txt"
    path.write_text("# train speakers\nmb-de1\n\nrh-alan\n")
    assert read_split(path) == ["mb-de1", "rh-alan"]
    path.write_text("mb-de1\nrh-alan\nmb-de1\n")
    with pytest.raises(DatasetError, match=r"train.txt:3: .*line 1"):
        read_split(path)
    path.write_text("mb-de1 extra\n")
    with pytest.raises(DatasetError, match=r"train.txt:1:"):
        read_split(path)


def test_read_trials(tmp_path: Path) -> None:
    path = tmp_path / "trials.txt"
    path.write_text("1 a/000.wav a/001.wav\n0 a/000.wav b/000.wav\n")
    assert read_trials(path) == [Trial(1, "a/000.wav", "a/001.wav"), Trial(0, "a/000.wav", "b/000.wav")]
    path.write_text("1 a/000.wav a/001.wav\n2 a/000.wav b/000.wav\n")
    with pytest.raises(DatasetError, match=r"trials.txt:2: label must be 0 or 1"):
        read_trials(path)
    path.write_text("1 a/000.wav\n")
    with pytest.raises(DatasetError, match=r"trials.txt:1: expected"):
        read_trials(path)
    with pytest.raises(DatasetError, match="cannot read"):
        read_trials(tmp_path / "nope.txt")
