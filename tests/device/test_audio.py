"""The one audio loader: formats it must read, and bad inputs it must name clearly."""

from __future__ import annotations

import struct
import wave

import numpy as np
import pytest
import soundfile as sf
from hypothesis import given, settings
from hypothesis import strategies as st

from device.audio import AudioError, load_audio, to_mono_16k


def tone(sr: int, seconds: float = 0.5, channels: int = 1) -> np.ndarray:
    t = np.arange(int(sr * seconds)) / sr
    x = 0.3 * np.sin(2 * np.pi * 440 * t)
    return np.stack([x] * channels, axis=1) if channels > 1 else x


@pytest.mark.parametrize("subtype", ["PCM_U8", "PCM_16", "PCM_24", "PCM_32", "FLOAT", "DOUBLE"])
def test_reads_every_wav_sample_format(tmp_path, subtype):
    path = tmp_path / f"{subtype}.wav"
    sf.write(path, tone(16000), 16000, subtype=subtype)
    audio = load_audio(path)
    assert audio.dtype == np.float32 and audio.shape == (8000,)
    assert 0.28 < np.abs(audio).max() <= 0.31


def test_reads_flac_stereo_and_resamples(tmp_path):
    path = tmp_path / "x.flac"
    sf.write(path, tone(44100, 1.0, channels=2), 44100)
    audio = load_audio(path)
    assert audio.shape == (16000,)
    spectrum = np.abs(np.fft.rfft(audio))
    assert abs(np.argmax(spectrum) - 440) <= 1  # 1 Hz bins: the tone survived resampling


@pytest.mark.parametrize("sr", [8000, 22050, 44100, 48000])
def test_resamples_common_rates(tmp_path, sr):
    sf.write(tmp_path / "a.wav", tone(sr, 1.0), sr)
    assert load_audio(tmp_path / "a.wav").shape == (16000,)


def bad_files(tmp_path):
    cases = {}
    (tmp_path / "empty.wav").write_bytes(b"")
    cases["empty.wav"] = "empty file"
    sf.write(tmp_path / "full.wav", tone(16000), 16000)
    (tmp_path / "truncated.wav").write_bytes((tmp_path / "full.wav").read_bytes()[:30])
    cases["truncated.wav"] = "not a readable audio file"
    (tmp_path / "notes.wav").write_text("these are my meeting notes, not audio\n" * 20)
    cases["notes.wav"] = "not a readable audio file"
    with wave.open(str(tmp_path / "zero.wav"), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
    cases["zero.wav"] = "zero-length"
    sf.write(tmp_path / "silent.wav", np.zeros(16000), 16000)
    cases["silent.wav"] = "silent"
    sf.write(tmp_path / "nan.wav", np.array([0.1, np.nan, 0.2] * 1000), 16000, subtype="FLOAT")
    cases["nan.wav"] = "NaN or infinite"
    sf.write(tmp_path / "inf.wav", np.array([0.1, np.inf, 0.2] * 1000), 16000, subtype="FLOAT")
    cases["inf.wav"] = "NaN or infinite"
    sf.write(tmp_path / "sixch.wav", tone(16000, 0.2, channels=6), 16000)
    cases["sixch.wav"] = "6 channels"
    with wave.open(str(tmp_path / "rate.wav"), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(1000)
        w.writeframes(struct.pack("<100h", *range(100)))
    cases["rate.wav"] = "sample rate 1000 Hz"
    sf.write(tmp_path / "huge_rate.wav", tone(16000, 0.1), 16000)
    raw = bytearray((tmp_path / "huge_rate.wav").read_bytes())
    raw[24:28] = struct.pack("<I", 2_000_000_000)  # absurd sample rate in the fmt chunk
    (tmp_path / "huge_rate.wav").write_bytes(bytes(raw))
    cases["huge_rate.wav"] = "sample rate"
    (tmp_path / "folder.wav").mkdir()
    cases["folder.wav"] = "is a directory"
    cases["missing.wav"] = "no such file"
    return cases


def test_bad_inputs_get_clear_errors_naming_the_file(tmp_path):
    for name, problem in bad_files(tmp_path).items():
        with pytest.raises(AudioError) as err:
            load_audio(tmp_path / name)
        message = str(err.value)
        assert name in message and problem in message, message


def test_bytes_and_file_objects(tmp_path):
    sf.write(tmp_path / "a.wav", tone(16000), 16000)
    data = (tmp_path / "a.wav").read_bytes()
    assert load_audio(data, name="upload.wav").shape == (8000,)
    with pytest.raises(AudioError, match="upload.bin: not a readable audio file"):
        load_audio(b"\x00\x01garbage" * 10, name="upload.bin")
    with pytest.raises(AudioError, match="upload.wav: empty file"):
        load_audio(b"", name="upload.wav")


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(-1.5, 1.5, allow_nan=False), min_size=1, max_size=4000),
       st.sampled_from([8000, 16000, 22050, 44100, 48000]))
def test_property_output_is_bounded_finite_mono(samples, sr):
    x = np.array(samples, dtype=np.float32)
    try:
        y = to_mono_16k(x, sr, "prop")
    except AudioError as exc:
        assert str(exc).startswith("prop: ")
        return
    assert y.dtype == np.float32 and y.ndim == 1 and y.size >= 1
    assert np.isfinite(y).all() and np.abs(y).max() <= 1.0


@settings(max_examples=40, deadline=None)
@given(st.binary(min_size=0, max_size=2000))
def test_property_random_bytes_never_crash_the_loader(blob):
    try:
        load_audio(blob, name="fuzz.wav")
    except AudioError as exc:
        assert str(exc).startswith("fuzz.wav: ")
