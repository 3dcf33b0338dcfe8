"""Real corpora as they are downloaded: LibriSpeech with subset folders (.flac), VoxCeleb2 (AAC .m4a)
and Common Voice (validated.tsv + clips/*.mp3), built in miniature from espeak-ng speech; their
listing, their decoding (train.corpus_audio), the seeded speaker split and a short training run on each."""

from __future__ import annotations

import json
import subprocess
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from scipy.signal import resample_poly

from device import audio as device_audio
from tests.helpers import TINY_TRAIN, TRAIN_PY, log_rows, require_module, require_tool, run
from train.corpus_audio import load_audio
from train.datasets import DatasetError, Utterance, detect_layout, list_utterances, read_split, seeded_split, write_seeded_split

SR = 16000
VOICES = ("en+m1", "en+f2", "en+m3", "en+f4", "en+m7")  # five people, three sentences each
SENTENCES = ("The quick brown fox jumps over the lazy dog.", "She sells sea shells by the sea shore.",
             "A stitch in time saves nine, my grandmother used to say.")
CV_HEADER = ["client_id", "path", "sentence_id", "sentence", "up_votes", "down_votes", "age", "gender", "locale"]
CV_CLIENTS = ("f3a1" * 16, "0b7c" * 16, "9e2d" * 16, "4c4c" * 16, "a0a0" * 16)  # 64 hex digits, as hashed ids


@pytest.fixture(scope="module")
def speech() -> list[list[np.ndarray]]:
    """Per voice, its three sentences as float32 mono 16 kHz (espeak-ng's 22.05 kHz WAV resampled)."""
    espeak = require_tool("espeak-ng")
    return [[device_audio.load_audio(subprocess.run([espeak, "-v", voice, "--stdout", text], capture_output=True,
                                                    check=True).stdout) for text in SENTENCES] for voice in VOICES]


def encode(path: Path, audio: np.ndarray, sr: int, codec: str) -> None:
    """`audio` (mono float) through PyAV's `codec` into `path`'s container. The first frame's pts is set
    so the muxer records the encoder's priming samples (an MP4 edit list) as real encoders do."""
    av = require_module("av")
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as out:
        stream = out.add_stream(codec, rate=sr, layout="mono")
        frame = av.AudioFrame.from_ndarray(audio.astype(np.float32)[None], format="flt", layout="mono")
        frame.sample_rate, frame.pts, frame.time_base = sr, 0, Fraction(1, sr)
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            out.mux(packet)


@pytest.fixture(scope="module")
def librispeech(tmp_path_factory: pytest.TempPathFactory, speech: list[list[np.ndarray]]) -> Path:
    """LibriSpeech/ as unpacked: SUBSET/SPK/CHAPTER/SPK-CHAPTER-NNNN.flac, speakers spread over subsets."""
    root = tmp_path_factory.mktemp("LibriSpeech")
    for spk, (subset, clips) in zip(("103", "1034", "19", "84", "7"), zip(
            ("train-clean-100", "train-clean-100", "train-other-500", "dev-clean", "dev-clean"), speech)):
        for i, audio in enumerate(clips):
            chapter = f"{spk}{i // 2}"
            path = root / subset / spk / chapter / f"{spk}-{chapter}-{i:04d}.flac"
            path.parent.mkdir(parents=True, exist_ok=True)
            sf.write(str(path), audio, SR)
        (root / subset / spk / f"{spk}0" / f"{spk}-{spk}0.trans.txt").write_text("TRANSCRIPT\n")
    return root


@pytest.fixture(scope="module")
def voxceleb2(tmp_path_factory: pytest.TempPathFactory, speech: list[list[np.ndarray]]) -> Path:
    """VoxCeleb2 as shipped: ID/VIDEO/NNNNN.m4a, AAC mono at 16 kHz."""
    root = tmp_path_factory.mktemp("vox2")
    for n, clips in enumerate(speech):
        for i, audio in enumerate(clips):
            encode(root / f"id{n + 10:05d}" / f"vid{i // 2}_{n}" / f"{i + 1:05d}.m4a", audio, SR, "aac")
    return root


@pytest.fixture(scope="module")
def commonvoice(tmp_path_factory: pytest.TempPathFactory, speech: list[list[np.ndarray]]) -> Path:
    """A Common Voice language folder: validated.tsv (rows not in speaker order, a sentence with quotes)
    and clips/*.mp3 at 48 kHz, as Common Voice ships them."""
    root = tmp_path_factory.mktemp("cv-corpus") / "en"
    rows = []
    for client, clips in zip(CV_CLIENTS, speech):
        for i, audio in enumerate(clips):
            name = cv_clip(len(rows))
            encode(root / "clips" / name, resample_poly(audio, 3, 1), 3 * SR, "libmp3lame")
            rows.append([client, name, f"s{i}", f'He said "{SENTENCES[i]}"', "2", "0", "", "", "en"])
    lines = ["\t".join(CV_HEADER)] + ["\t".join(r) for r in rows[::-1]]
    (root / "validated.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (root / "invalidated.tsv").write_text("\t".join(CV_HEADER) + "\n", encoding="utf-8")
    return root


def cv_clip(row: int) -> str:
    """The clip of validated.tsv's row (in speaker order): names that sort in another order, as the real ones."""
    return f"common_voice_en_{row * 7919 % 1000:03d}.mp3"


def counts(utts: list[Utterance]) -> dict[str, int]:
    return {spk: sum(u.speaker == spk for u in utts) for spk in dict.fromkeys(u.speaker for u in utts)}


def test_librispeech_with_subset_folders_is_listed_by_speaker(librispeech: Path) -> None:
    assert detect_layout(librispeech) == "librispeech"
    utts = list_utterances(librispeech)
    assert counts(utts) == {"103": 3, "1034": 3, "19": 3, "7": 3, "84": 3}
    assert utts == sorted(utts) and all(u.path.suffix == ".flac" for u in utts)
    assert utts[0].path == librispeech / "train-clean-100/103/1030/103-1030-0000.flac"


def test_voxceleb2_m4a_is_listed_and_decodes_to_the_source(voxceleb2: Path, speech: list[list[np.ndarray]]) -> None:
    assert detect_layout(voxceleb2) == "voxceleb-m4a"
    utts = list_utterances(voxceleb2)
    assert counts(utts) == {f"id{n:05d}": 3 for n in range(10, 15)}
    assert utts == sorted(utts) and utts[0].path == voxceleb2 / "id00010/vid0_0/00001.m4a"
    assert_close(load_audio(utts[0].path), speech[0][0])


def test_commonvoice_speakers_are_client_ids_and_mp3_decodes_to_the_source(
        commonvoice: Path, speech: list[list[np.ndarray]]) -> None:
    assert detect_layout(commonvoice) == "commonvoice"
    utts = list_utterances(commonvoice)
    assert counts(utts) == {client: 3 for client in sorted(CV_CLIENTS)}
    assert utts == sorted(utts) and all(u.path.parent == commonvoice / "clips" for u in utts)
    assert_close(load_audio(commonvoice / "clips" / cv_clip(3 * 2 + 1)), speech[2][1])


def assert_close(decoded: np.ndarray, source: np.ndarray) -> None:
    """16 kHz mono float32, the source's length within one codec frame (1024 AAC / 1152 MP3 samples),
    in step with it (the encoder's priming samples trimmed) and at its level: lossy at these rates
    keeps speech's waveform (measured: correlation 0.998, RMS within 6 %)."""
    assert decoded.dtype == np.float32 and decoded.ndim == 1
    assert abs(decoded.size - source.size) <= 1152
    n = min(decoded.size, source.size)
    assert np.corrcoef(decoded[:n], source[:n])[0, 1] > 0.99
    assert np.sqrt(np.mean(decoded[:n] ** 2)) / np.sqrt(np.mean(source[:n] ** 2)) == pytest.approx(1.0, abs=0.1)


def test_wav_and_flac_go_through_the_device_loader_unchanged(librispeech: Path) -> None:
    path = list_utterances(librispeech)[0].path
    assert np.array_equal(load_audio(path), device_audio.load_audio(path))


def test_undecodable_and_missing_files_name_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.m4a"
    bad.write_bytes(b"not an mp4 container at all" * 10)
    with pytest.raises(device_audio.AudioError, match=r"bad\.m4a: not a readable audio file"):
        load_audio(bad)
    with pytest.raises(device_audio.AudioError, match=r"gone\.mp3: no such file"):
        load_audio(tmp_path / "gone.mp3")


def test_a_commonvoice_tsv_without_its_columns_is_refused(tmp_path: Path) -> None:
    (tmp_path / "clips").mkdir()
    (tmp_path / "validated.tsv").write_text("speaker\tfile\nabc\tx.mp3\n")
    with pytest.raises(DatasetError, match=r"validated\.tsv:1: no column client_id, path"):
        list_utterances(tmp_path)


def test_the_error_for_an_unknown_tree_names_every_layout(tmp_path: Path) -> None:
    (tmp_path / "spk" / "notes.txt").parent.mkdir()
    (tmp_path / "spk" / "notes.txt").write_text("no audio")
    with pytest.raises(DatasetError) as err:
        detect_layout(tmp_path)
    for name in ("folder", "librispeech", "voxceleb (", "voxceleb-m4a", "commonvoice"):
        assert name in str(err.value)


def test_the_seeded_split_is_deterministic_and_keeps_two_validation_speakers(tmp_path: Path,
                                                                            librispeech: Path) -> None:
    people = [f"p{i:03d}" for i in range(100)]
    train, val = seeded_split(people[::-1], seed=0)
    assert (train, val) == seeded_split(people, seed=0) and val != seeded_split(people, seed=1)[1]
    assert len(val) == 5 and train == sorted(train) and sorted(train + val) == people
    assert len(seeded_split(people[:5], seed=0)[1]) == 2  # 5 % of 5 rounds to 0; EER needs two people
    with pytest.raises(DatasetError, match="2 speakers"):
        seeded_split(people[:2], seed=0)

    first, again = tmp_path / "a", tmp_path / "b"
    assert write_seeded_split(librispeech, first, seed=3) == write_seeded_split(librispeech, again, seed=3)
    for name in ("train.txt", "val.txt"):
        assert (first / name).read_bytes() == (again / name).read_bytes()
    assert len(read_split(first / "train.txt")) == 3 and len(read_split(first / "val.txt")) == 2


@pytest.mark.parametrize("layout", ["librispeech", "voxceleb2", "commonvoice"])
def test_two_epochs_train_on_each_layout_with_a_seeded_split_in_the_run_folder(
        layout: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    root = request.getfixturevalue(layout)
    before = sorted(p.name for p in root.iterdir())
    out = tmp_path / "run"
    proc = run([TRAIN_PY, "-m", "train", "--data", root, "--out", out, "--epochs", "2", *TINY_TRAIN,
                "--speeds", "1.0", "--seed", "4"], env={"TF_CONFIG": ""})
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert f"{root} has no splits folder: seeded speaker split (seed 4" in proc.stdout
    assert "3 training and 2 validation speakers" in proc.stdout
    assert sorted(p.name for p in root.iterdir()) == before  # nothing written into the corpus
    assert json.loads((out / "config.json").read_text())["splits"] == str(out / "splits")
    assert len(read_split(out / "splits" / "train.txt")) == 3 and len(read_split(out / "splits" / "val.txt")) == 2
    assert [r["epoch"] for r in log_rows(out)] == ["1", "2"]
    assert (out / "best.weights.h5").stat().st_size > 0
    assert json.loads((out / "metrics.json").read_text())["epochs"] == 2


def test_train_corpus_runs_the_recipe_from_a_downloaded_corpus_to_a_scored_bundle(
        voxceleb2: Path, tmp_path: Path) -> None:
    """scripts/train_corpus.sh on VoxCeleb2's .m4a layout: listing, streamed training, export (both
    device runtimes), and the trial list the user names scored through the bundle."""
    utts = list_utterances(voxceleb2)
    firsts = {u.speaker: str(u.path.relative_to(voxceleb2)) for u in reversed(utts)}
    seconds = {u.speaker: str(u.path.relative_to(voxceleb2)) for u in utts}
    speakers = sorted(firsts)
    trials = tmp_path / "trials.txt"
    trials.write_text("".join(f"1 {firsts[s]} {seconds[s]}\n0 {firsts[s]} {seconds[o]}\n"
                              for s, o in zip(speakers, speakers[1:] + speakers[:1])))
    out, run_dir = tmp_path / "bundle", tmp_path / "run"
    proc = run(["bash", "scripts/train_corpus.sh", voxceleb2, out, "--run", run_dir, "--trials", trials,
                "--audio-root", voxceleb2, "--", "--epochs", "2", *TINY_TRAIN, "--speeds", "1.0"],
               env={"TF_CONFIG": ""}, timeout=900)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert f"{voxceleb2}: layout voxceleb-m4a, 5 speakers, 15 utterances" in proc.stdout
    assert [r["epoch"] for r in log_rows(run_dir)] == ["1", "2"]
    assert json.loads((run_dir / "config.json").read_text())["pipeline"] == "stream"
    assert (out / "model.tflite").stat().st_size > 0
    scored = json.loads((out / "eval" / "trials.json").read_text())
    assert (scored["n_target"], scored["n_nontarget"]) == (5, 5) and 0 <= scored["eer"] <= 100
    stages = [line.split()[2] for line in proc.stdout.splitlines() if line.startswith("train_corpus: stage")]
    assert stages == ["0", "1", "2", "3"]
