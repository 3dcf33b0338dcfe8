"""Bad input through the real entry points: each case fails closed with a message naming the
problem, the same process goes on working, and the enrolled profile is untouched.

Files and streams go through `python -m device identify` (in-process `cli.main`, so one process sees
every case), names through `enroll`, configurations, bundles and stores through the CLI as a
subprocess. Property tests cover the name policy; the loader's and the MFCC frontend's are in
tests/device/test_audio.py and tests/device/test_features.py.
"""

from __future__ import annotations

import io
import json
import shutil
import sqlite3
import struct
import threading
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from hypothesis import given, settings
from hypothesis import strategies as st

from device import cli
from device.audio import AudioError, load_audio
from device.config import Config
from device.features import FeatureConfig, mfcc
from device.names import MAX_NAME_LENGTH, SpeakerNameError, check_name
from device.sources import FileSource
from device.store import SCHEMA_VERSION, Store
from tests.helpers import DEVICE_PY, corpus_speakers, recognize_offline, run
from tests.reliability.helpers import enroll_cli, write_config

OWNER = "owner"


@pytest.fixture(scope="module")
def device(tiny_bundle: Path, tiny_corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A store with one enrolled speaker, a config pointing at it, and a clean speech clip."""
    root = tmp_path_factory.mktemp("bad_input")
    files = next(iter(corpus_speakers(tiny_corpus).values()))
    config = write_config(root / "device.toml", tiny_bundle, root / "store.db")
    enroll_cli(config, OWNER, files[:3])
    return {"root": root, "config": config, "store": root / "store.db", "speech": load_audio(files[-1])[:32000],
            "bundle": tiny_bundle, "clip": files[-1]}


def profile_intact(device: dict) -> None:
    with Store(device["store"], readonly=True) as s:
        assert [(p.name, p.n_samples) for p in s.list_speakers()] == [(OWNER, 3)]
        assert s._db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def decision_code(device: dict, path: Path) -> int:
    """The exit code `identify` must give `path`: 0 when the device's Recognizer accepts it, else 1."""
    cfg = Config(model=str(device["bundle"]), store=str(device["store"]))
    return 0 if recognize_offline(cfg, load_audio(path), cfg.policy).decision.accepted else 1


def identify(device: dict, path: Path, capsys: pytest.CaptureFixture) -> tuple[int, str]:
    code = cli.main(["identify", "--config", str(device["config"]), "--file", str(path)])
    return code, capsys.readouterr().err


# --- files: how each is made, and what the device must answer ("" = a decision, exit 0 or 1) ----


def _wav(path: Path, audio: np.ndarray, sr: int = 16000, subtype: str = "PCM_16") -> None:
    sf.write(str(path), audio, sr, subtype=subtype)


def _resampled(speech: np.ndarray, sr: int) -> np.ndarray:
    from scipy.signal import resample_poly
    return resample_poly(speech, sr // 50, 16000 // 50).astype(np.float32)


def _with_chunk(path: Path, speech: np.ndarray) -> None:
    """A LIST chunk and an unknown chunk between fmt and data (as some recorders write)."""
    _wav(path, speech)
    raw = path.read_bytes()
    at = raw.index(b"data")
    info = b"INFO" + b"ISFT" + struct.pack("<I", 4) + b"test"
    extra = b"LIST" + struct.pack("<I", len(info)) + info + b"junk" + struct.pack("<I", 3) + b"xyz\x00"
    body = raw[12:at] + extra + raw[at:]
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body) + 4) + b"WAVE" + body)


def _data_size(path: Path, speech: np.ndarray, size: int) -> None:
    _wav(path, speech)
    raw = bytearray(path.read_bytes())
    at = raw.index(b"data")
    raw[at + 4:at + 8] = struct.pack("<I", size)
    path.write_bytes(bytes(raw))


def _truncated(path: Path, speech: np.ndarray) -> None:
    _wav(path, speech)
    path.write_bytes(path.read_bytes()[:30])  # cut inside the fmt chunk


def _one_hour_sparse(path: Path, sr: int = 16000) -> None:
    """A valid 1 h 16-bit WAV header over a sparse (all-zero, not allocated) body."""
    n = 3600 * sr * 2
    header = (b"RIFF" + struct.pack("<I", 36 + n) + b"WAVE" + b"fmt " + struct.pack("<IHHIIHH", 16, 1, 1, sr, sr * 2, 2, 16)
              + b"data" + struct.pack("<I", n))
    with open(path, "wb") as f:
        f.write(header)
        f.truncate(len(header) + n)


FILE_CASES: dict[str, tuple[Callable[[Path, np.ndarray], None], str]] = {
    "empty": (lambda p, s: p.write_bytes(b""), "empty file (0 bytes)"),
    "truncated header": (_truncated, "not a readable audio file"),
    "header only": (lambda p, s: (_wav(p, s), p.write_bytes(p.read_bytes()[:44])), "no audio samples"),
    "text file": (lambda p, s: p.write_text("hello, I am not audio\n" * 50), "not a readable audio file"),
    "random bytes": (lambda p, s: p.write_bytes(np.random.default_rng(0).bytes(5000)), "not a readable audio file"),
    "extra chunks": (_with_chunk, ""),
    "data size too large": (lambda p, s: _data_size(p, s, 0x7FFFFFF0), ""),
    "data size too small": (lambda p, s: _data_size(p, s, 32000), ""),
    "8-bit": (lambda p, s: _wav(p, s, subtype="PCM_U8"), ""),
    "24-bit": (lambda p, s: _wav(p, s, subtype="PCM_24"), ""),
    "32-bit float": (lambda p, s: _wav(p, s, subtype="FLOAT"), ""),
    "stereo": (lambda p, s: _wav(p, np.stack([s, s * 0.5], axis=1)), ""),
    "6-channel": (lambda p, s: _wav(p, np.repeat(s[:, None], 6, axis=1)), "6 channels; only mono or stereo"),
    "8 kHz": (lambda p, s: _wav(p, _resampled(s, 8000), 8000), ""),
    "22.05 kHz": (lambda p, s: _wav(p, _resampled(s, 22050), 22050), ""),
    "44.1 kHz": (lambda p, s: _wav(p, _resampled(s, 44100), 44100), ""),
    "48 kHz": (lambda p, s: _wav(p, _resampled(s, 48000), 48000), ""),
    "NaN samples": (lambda p, s: _wav(p, np.where(np.arange(len(s)) == 500, np.nan, s), subtype="FLOAT"),
                    "NaN or infinite"),
    "inf samples": (lambda p, s: _wav(p, np.where(np.arange(len(s)) == 500, np.inf, s), subtype="FLOAT"),
                    "NaN or infinite"),
    "DC offset": (lambda p, s: _wav(p, np.clip(s * 0.5 + 0.4, -1, 1)), ""),
    "full-scale clipping": (lambda p, s: _wav(p, np.clip(s * 50, -1, 1)), ""),
    "pure silence": (lambda p, s: _wav(p, np.zeros_like(s)), "the audio is silent"),
    "0.1 s": (lambda p, s: _wav(p, s[:1600]), "too short"),
    "1 h (sparse)": (lambda p, s: _one_hour_sparse(p), "3600 s of audio; the limit is 600 s"),
    "FLAC": (lambda p, s: sf.write(str(p), s, 16000, format="FLAC"), ""),
}


@pytest.mark.parametrize("case", list(FILE_CASES))
def test_audio_file(device: dict, case: str, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    make, expected = FILE_CASES[case]
    path = tmp_path / "clip.wav"
    make(path, device["speech"])
    code, err = identify(device, path, capsys)
    if expected:
        assert code == 2 and err.startswith(f"error: {path}") and expected in err, err
    else:  # the CLI decides as the Recognizer does on what the loader read
        assert code == decision_code(device, path), err
    code, err = identify(device, device["clip"], capsys)  # the same process still works
    assert code == decision_code(device, device["clip"]), err
    profile_intact(device)


def test_one_hour_streams_in_bounded_memory(tmp_path: Path) -> None:
    """The daemon's FileSource streams a 16 kHz file block by block: 1 h costs no more than 1 s."""
    path = tmp_path / "hour.wav"
    _one_hour_sparse(path)
    with pytest.raises(AudioError, match="the limit is 600 s"):
        load_audio(path)
    tracemalloc.start()
    try:
        n = sum(len(b) for b in FileSource(path).blocks(threading.Event()))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert n == 3600 * 16000 and peak < 5 * 2**20


@settings(max_examples=60, deadline=None)
@given(st.sampled_from([8000, 16000, 22050, 44100, 48000]), st.integers(1, 2), st.sampled_from(["PCM_U8", "PCM_16",
       "PCM_24", "FLOAT"]), st.floats(-0.9, 0.9), st.floats(0.0, 4.0), st.integers(1, 12000))
def test_loader_and_frontend_on_odd_but_valid_files(sr: int, channels: int, subtype: str, dc: float, gain: float,
                                                   n: int) -> None:
    """Any rate, channel count, sample format, DC offset and level (up to hard clipping): the loader
    gives bounded mono 16 kHz or an AudioError, and the MFCC frontend gives finite features."""
    noise = np.random.default_rng(n).uniform(-1, 1, (n, channels))
    buf = io.BytesIO()
    sf.write(buf, np.clip(dc + gain * noise, -1, 1).astype(np.float32), sr, subtype=subtype, format="WAV")
    try:
        audio = load_audio(buf.getvalue(), name="odd.wav")
    except AudioError as exc:
        assert str(exc).startswith("odd.wav: ")
        return
    assert audio.dtype == np.float32 and np.abs(audio).max() <= 1.0
    assert np.isfinite(mfcc(audio, FeatureConfig())).all()


# --- names ------------------------------------------------------------------------------------

NAME_CASES = {
    "slash": ("a/b", "path separator"),
    "traversal": ("../../etc/passwd", "path separator"),
    "backslash": ("..\\evil", "path separator"),
    "dot-dot": ("..", "path separator"),
    "10 000 characters": ("x" * 10000, "10000 characters; the limit is 64"),
    "empty": ("", "speaker name is empty"),
    "newline": ("ann\nbob", "non-printable character U+000A"),
    "bidi override": ("ann\u202egpj.exe", "non-printable character U+202E"),
    "padded": (" ann ", "whitespace"),
    "single quote": ("O'Brien", ""),
    "double quotes": ('Ann "the voice" Lee', ""),
    "SQL": ("Robert'); DROP TABLE speakers;--", ""),
    "emoji": ("Zoë 🎙️", ""),
    "64 characters": ("y" * 64, ""),
}


@pytest.mark.parametrize("case", list(NAME_CASES))
def test_speaker_name(device: dict, case: str, capsys: pytest.CaptureFixture) -> None:
    name, expected = NAME_CASES[case]
    code = cli.main(["enroll", name, "--config", str(device["config"]), "--files", str(device["clip"])])
    err = capsys.readouterr().err
    if expected:
        assert code == 2 and expected in err, err
    else:
        assert code == 0, err
        with Store(device["store"]) as s:
            assert s.get_speaker(name) is not None
            assert s.delete_speaker(name)
    profile_intact(device)


@given(st.text(max_size=80))
def test_name_policy_property(name: str) -> None:
    """Every string is either accepted unchanged, or refused with SpeakerNameError (never another error)."""
    try:
        assert check_name(name) == name
    except SpeakerNameError:
        return
    assert 1 <= len(name) <= MAX_NAME_LENGTH and name == name.strip() and name.isprintable()
    assert "/" not in name and "\\" not in name and name not in (".", "..")


def test_name_policy_is_the_stores(tmp_path: Path) -> None:
    """The store enforces the policy itself, so an import or a future caller cannot skip it."""
    from device.store import Speaker
    with Store(tmp_path / "s.db") as s, pytest.raises(SpeakerNameError):
        s.save_speaker(Speaker("a/b", "m", "sha", np.ones(4, np.float32), 1, 1.0, 1.0), [])


def test_claim_for_unknown_speaker(device: dict, capsys: pytest.CaptureFixture) -> None:
    code = cli.main(["verify", "--config", str(device["config"]), "--claim", "nobody", "--file", str(device["clip"])])
    err = capsys.readouterr().err
    assert code == 2 and "not enrolled: nobody (enrolled: owner)" in err
    profile_intact(device)


# --- configuration, bundle and store: through the CLI as a subprocess -------------------------

CONFIG_CASES = {
    "wrong type": ('threads = "two"\n', "threads must be int"),
    "bool for a number": ("heartbeat_s = true\n", "heartbeat_s must be float"),
    "unknown key": ("colour = 1\n", "unknown key(s) colour"),
    "unknown nested key": ("[lockout]\ntries = 3\n", "unknown key(s) lockout.tries"),
    "table expected": ("vad = 3\n", "vad must be a table"),
    "not TOML": ("model = [\n", "not valid TOML"),
    "binary": ("\udcff", "not valid TOML"),
}


@pytest.mark.parametrize("case", list(CONFIG_CASES))
def test_config_file(device: dict, case: str, tmp_path: Path) -> None:
    text, expected = CONFIG_CASES[case]
    path = tmp_path / "bad.toml"
    path.write_bytes(text.encode("utf-8", "surrogateescape"))
    proc = run([DEVICE_PY, "-m", "device", "identify", "--config", path, "--file", device["clip"],
                "--store", device["store"]])
    assert proc.returncode == 2 and f"error: {path}" in proc.stderr and expected in proc.stderr, proc.stderr
    profile_intact(device)


def _bundle_edit(meta_edit: Callable[[dict], None] | None = None, remove: str = "") -> Callable[[Path], None]:
    def apply(bundle: Path) -> None:
        if meta_edit is not None:
            meta = json.loads((bundle / "model.json").read_text())
            meta_edit(meta)
            (bundle / "model.json").write_text(json.dumps(meta))
        if remove:
            (bundle / remove).unlink()
    return apply


BUNDLE_CASES = {
    "wrong model hash": (_bundle_edit(lambda m: m.update(sha256="0" * 64)), "does not match model.json"),
    "missing cohort": (_bundle_edit(remove="cohort.npy"), "cohort file cohort.npy named in model.json is missing"),
    "wrong cohort hash": (_bundle_edit(lambda m: m["cohort"].update(sha256="0" * 64)), "sha256 does not match"),
    "feature sample rate": (_bundle_edit(lambda m: m["features"].update(sample_rate=8000)), "sample_rate"),
    "feature window kind": (_bundle_edit(lambda m: m["features"].update(window="kaiser")), "window"),
    "future bundle schema": (_bundle_edit(lambda m: m.update(schema=99)), "bundle schema 99"),
}


@pytest.mark.parametrize("case", list(BUNDLE_CASES))
def test_bundle(device: dict, case: str, tmp_path: Path) -> None:
    edit, expected = BUNDLE_CASES[case]
    bundle = tmp_path / "bundle"
    shutil.copytree(device["bundle"], bundle)
    edit(bundle)
    proc = run([DEVICE_PY, "-m", "device", "identify", "--config", device["config"], "--model", bundle,
                "--file", device["clip"]])
    assert proc.returncode == 2 and expected in proc.stderr, proc.stderr
    profile_intact(device)


def test_store_from_the_future(device: dict, tmp_path: Path) -> None:
    path = tmp_path / "future.db"
    Store(path).close()
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.close()
    before = path.read_bytes()
    proc = run([DEVICE_PY, "-m", "device", "profiles", "list", "--config", device["config"], "--store", path])
    assert proc.returncode == 2 and f"store schema version {SCHEMA_VERSION + 1} is newer" in proc.stderr
    assert path.read_bytes() == before  # refused, not "migrated"
