"""The project's only MFCC frontend (python_speech_features + numpy).

Training, export, evaluation, the daemon and the status page all call `mfcc()` with a
`FeatureConfig`; the config travels inside every model bundle (`model.json`), and the device
refuses a bundle whose config it cannot honour. The definition is pinned down by a test that
matches a librosa configuration (same filterbank, pre-emphasis, frame alignment, natural log,
no lifter).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np
import python_speech_features as psf
from scipy.signal import get_window

FEATURE_SCHEMA = 1
WINDOWS = ("hann", "hamming")
NORMS = ("none", "cmn", "cmvn")


class FeatureConfigError(ValueError):
    """A feature configuration this frontend cannot honour."""


@dataclass(frozen=True)
class FeatureConfig:
    sample_rate: int = 16000
    win_len: float = 0.025
    win_step: float = 0.010
    n_fft: int = 512
    n_filters: int = 40
    n_ceps: int = 20
    low_freq: float = 20.0
    high_freq: float = 7600.0
    preemph: float = 0.97
    window: str = "hann"
    norm: str = "cmn"
    schema: int = FEATURE_SCHEMA

    def __post_init__(self) -> None:
        problems = []
        if self.schema != FEATURE_SCHEMA:
            problems.append(f"feature schema {self.schema} (this device speaks {FEATURE_SCHEMA})")
        if self.sample_rate != 16000:
            problems.append(f"sample_rate {self.sample_rate} (the device records 16000 Hz)")
        if self.window not in WINDOWS:
            problems.append(f"window {self.window!r} (known: {', '.join(WINDOWS)})")
        if self.norm not in NORMS:
            problems.append(f"norm {self.norm!r} (known: {', '.join(NORMS)})")
        if not 0 < self.win_step <= self.win_len <= 0.1:
            problems.append(f"win_len {self.win_len} / win_step {self.win_step}")
        if self.n_fft < self.frame_length:
            problems.append(f"n_fft {self.n_fft} shorter than a frame ({self.frame_length} samples)")
        if not 0 < self.n_ceps <= self.n_filters <= 128:
            problems.append(f"n_ceps {self.n_ceps} / n_filters {self.n_filters}")
        if not 0 <= self.low_freq < self.high_freq <= self.sample_rate / 2:
            problems.append(f"band {self.low_freq}-{self.high_freq} Hz")
        if not 0 <= self.preemph < 1:
            problems.append(f"preemph {self.preemph}")
        if problems:
            raise FeatureConfigError("unsupported feature config: " + "; ".join(problems))

    @property
    def frame_length(self) -> int:
        return int(round(self.win_len * self.sample_rate))

    @property
    def frame_step(self) -> int:
        return int(round(self.win_step * self.sample_rate))

    def n_frames(self, n_samples: int) -> int:
        """Frames `mfcc` returns for `n_samples` (python_speech_features pads the last frame)."""
        if n_samples <= self.frame_length:
            return 1
        return 1 + int(np.ceil((n_samples - self.frame_length) / self.frame_step))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FeatureConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise FeatureConfigError(f"unsupported feature config: unknown keys {unknown}")
        try:
            return cls(**data)
        except TypeError as exc:
            raise FeatureConfigError(f"unsupported feature config: {exc}") from None


def window_function(cfg: FeatureConfig):
    """Periodic window, as librosa/scipy use for STFTs."""
    return lambda n: get_window(cfg.window, n, fftbins=True)


def log_mel_cepstra(audio: np.ndarray, cfg: FeatureConfig) -> np.ndarray:
    """Un-normalised MFCCs, shape (frames, n_ceps)."""
    return psf.mfcc(
        np.asarray(audio, dtype=np.float64),
        samplerate=cfg.sample_rate,
        winlen=cfg.win_len,
        winstep=cfg.win_step,
        numcep=cfg.n_ceps,
        nfilt=cfg.n_filters,
        nfft=cfg.n_fft,
        lowfreq=cfg.low_freq,
        highfreq=cfg.high_freq,
        preemph=cfg.preemph,
        ceplifter=0,
        appendEnergy=False,
        winfunc=window_function(cfg),
    )


def mfcc(audio: np.ndarray, cfg: FeatureConfig) -> np.ndarray:
    """MFCCs with the per-utterance normalisation the config asks for: float32 (frames, n_ceps)."""
    return normalize(log_mel_cepstra(audio, cfg), cfg)


def normalize(feats: np.ndarray, cfg: FeatureConfig) -> np.ndarray:
    """Per-utterance mean (cmn) or mean+variance (cmvn) normalisation over time."""
    if cfg.norm in ("cmn", "cmvn"):
        feats = feats - feats.mean(axis=0, keepdims=True)
    if cfg.norm == "cmvn":
        feats = feats / (feats.std(axis=0, keepdims=True) + 1e-5)
    return feats.astype(np.float32)
