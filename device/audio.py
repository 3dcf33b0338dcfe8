"""The one audio loader: any WAV/FLAC soundfile reads -> float32 mono 16 kHz in [-1, 1].

Every problem with an input becomes an AudioError whose message starts with the file's name,
so a person sees "clip.wav: no audio samples (zero-length)" rather than a numpy traceback.
"""

from __future__ import annotations

import io
import os
from math import gcd
from pathlib import Path
from typing import BinaryIO

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly

TARGET_SR = 16000
MIN_SR = 4000
MAX_SR = 384000
MAX_CHANNELS = 2
SILENCE_PEAK = 1e-4  # about -80 dBFS: nothing a microphone records is this quiet
# A whole-file load is held in memory (float32, plus resampling copies), so it is bounded: 10 min at
# 48 kHz stereo already peaks near 300 MB, and no utterance or enrollment sample is that long.
# Longer 16 kHz recordings stream through sources.FileSource instead.
MAX_SECONDS = 600

Source = str | os.PathLike | BinaryIO | bytes


class AudioError(ValueError):
    """A bad audio input; the message names the input and the problem."""


def _name(source: Source, name: str | None) -> str:
    if name:
        return name
    if isinstance(source, (str, os.PathLike)):
        return str(source)
    return getattr(source, "name", "<audio data>")


def load_audio(source: Source, name: str | None = None, allow_silent: bool = False) -> np.ndarray:
    """Read `source` (path, file object or bytes) as float32 mono at 16 kHz.

    Raises AudioError for anything that is not usable speech audio.
    """
    label = _name(source, name)
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if path.is_dir():
            raise AudioError(f"{label}: is a directory, not an audio file")
        if not path.exists():
            raise AudioError(f"{label}: no such file")
        if path.stat().st_size == 0:
            raise AudioError(f"{label}: empty file (0 bytes)")
    elif isinstance(source, bytes):
        if not source:
            raise AudioError(f"{label}: empty file (0 bytes)")
        source = io.BytesIO(source)
    try:
        with sf.SoundFile(source) as f:
            sr, channels, frames = f.samplerate, f.channels, f.frames
            if channels > MAX_CHANNELS:
                raise AudioError(f"{label}: {channels} channels; only mono or stereo is supported")
            if not MIN_SR <= sr <= MAX_SR:
                raise AudioError(f"{label}: sample rate {sr} Hz is outside {MIN_SR}-{MAX_SR} Hz")
            if frames > MAX_SECONDS * sr:
                raise AudioError(f"{label}: {frames / sr:.0f} s of audio; the limit is {MAX_SECONDS} s")
            data = f.read(dtype="float32", always_2d=True)
    except AudioError:
        raise
    except (sf.LibsndfileError, RuntimeError, TypeError, EOFError) as exc:
        raise AudioError(f"{label}: not a readable audio file ({_short(exc)})") from None
    return _clean(data, sr, label, allow_silent)


def to_mono_16k(data: np.ndarray, sr: int, label: str = "<audio>", allow_silent: bool = False) -> np.ndarray:
    """Validate and convert an in-memory (frames,) or (frames, channels) array."""
    data = np.asarray(data, dtype=np.float32)
    if data.ndim == 1:
        data = data[:, None]
    if data.ndim != 2 or data.shape[1] > MAX_CHANNELS:
        raise AudioError(f"{label}: expected mono or stereo samples, got shape {data.shape}")
    if not MIN_SR <= sr <= MAX_SR:
        raise AudioError(f"{label}: sample rate {sr} Hz is outside {MIN_SR}-{MAX_SR} Hz")
    return _clean(data, sr, label, allow_silent)


def _clean(data: np.ndarray, sr: int, label: str, allow_silent: bool) -> np.ndarray:
    if data.shape[0] == 0:
        raise AudioError(f"{label}: no audio samples (zero-length)")
    if not np.isfinite(data).all():
        raise AudioError(f"{label}: contains NaN or infinite samples")
    mono = data.mean(axis=1)
    if sr != TARGET_SR:
        g = gcd(int(sr), TARGET_SR)
        mono = resample_poly(mono, TARGET_SR // g, int(sr) // g).astype(np.float32)
    mono = np.clip(mono, -1.0, 1.0).astype(np.float32, copy=False)
    if mono.size == 0:
        raise AudioError(f"{label}: too short to resample to {TARGET_SR} Hz")
    if not allow_silent and float(np.max(np.abs(mono))) < SILENCE_PEAK:
        raise AudioError(f"{label}: the audio is silent (peak below -80 dBFS)")
    return mono


def save_wav(path: str | os.PathLike, audio: np.ndarray, sr: int = TARGET_SR) -> None:
    """Write 16-bit PCM WAV (the corpus and fixture format)."""
    sf.write(str(path), np.asarray(audio, dtype=np.float32), sr, subtype="PCM_16")


def _short(exc: Exception) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text.split(": ", 1)[-1][:120]
