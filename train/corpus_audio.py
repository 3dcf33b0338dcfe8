"""Corpus audio on the workstation: every training, teacher and evaluation read of a corpus file.

WAV and FLAC go through `device.audio.load_audio` unchanged, so their cepstra are the device's.
Compressed formats soundfile cannot decode (VoxCeleb2's AAC `.m4a`, Common Voice's `.mp3`) are
decoded with PyAV (ffmpeg, pinned in requirements-train.txt) and converted by the device's own
`to_mono_16k`: float32 mono at 16 kHz, resampled and checked exactly as a WAV would be. The device
never reads these formats, so device/ stays free of PyAV.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from device import audio as device_audio
from device.audio import MAX_SECONDS, AudioError, to_mono_16k

DECODED_SUFFIXES = (".m4a", ".mp3")


def load_audio(path: str | os.PathLike, allow_silent: bool = False) -> np.ndarray:
    """Read a corpus file as float32 mono at 16 kHz; raises AudioError naming the file."""
    path = Path(path)
    if path.suffix.lower() not in DECODED_SUFFIXES:
        return device_audio.load_audio(path, allow_silent=allow_silent)
    if not path.is_file() or path.stat().st_size == 0:
        return device_audio.load_audio(path)  # raises its own message (no such file, directory, empty)
    data, sr = _decode(path)
    return to_mono_16k(data, sr, str(path), allow_silent)


def _decode(path: Path) -> tuple[np.ndarray, int]:
    """(frames, channels) float32 samples of the first audio stream, and their rate."""
    import av  # only here: .venv-peers (train.teacher) reads WAV/FLAC corpora without PyAV

    try:
        with av.open(str(path)) as container:
            if not container.streams.audio:
                raise AudioError(f"{path}: no audio stream")
            stream = container.streams.audio[0]
            planar = av.AudioResampler(format="fltp")  # float planes; channel layout and rate kept
            blocks, rate, frames = [], stream.codec_context.sample_rate, 0
            for frame in container.decode(stream):
                blocks += [f.to_ndarray() for f in planar.resample(frame)]
                frames += frame.samples
                if frames > MAX_SECONDS * rate:
                    raise AudioError(f"{path}: over {MAX_SECONDS} s of audio, the limit")
            blocks += [f.to_ndarray() for f in planar.resample(None)]
    except av.FFmpegError as exc:
        raise AudioError(f"{path}: not a readable audio file ({exc.strerror or type(exc).__name__})") from None
    if not blocks:
        raise AudioError(f"{path}: no audio samples (zero-length)")
    return np.concatenate(blocks, axis=1).T, rate
