"""The project's only MFCC frontend (numpy + scipy.fft; python_speech_features defines the numbers).

Training, export, evaluation, the daemon and the status page all call `mfcc()` with a
`FeatureConfig`; the config travels inside every model bundle (`model.json`), and the device
refuses a bundle whose config it cannot honour. The definition is pinned down by tests that
match python_speech_features and a librosa configuration (same filterbank, pre-emphasis, frame
alignment, natural log, no lifter). `CepstraStream` computes the same cepstra while audio arrives.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import numpy as np
import python_speech_features as psf
import scipy.fft
from numpy.lib.stride_tricks import as_strided
from scipy.signal import get_window

FEATURE_SCHEMA = 1
WINDOWS = ("hann", "hamming")
NORMS = ("none", "cmn", "cmvn")


def _round_half_up(x: float) -> int:
    """Samples in a window as python_speech_features counts them (400.5 -> 401, where round() gives 400)."""
    return int(Decimal(x).quantize(Decimal(1), rounding=ROUND_HALF_UP))


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
        return _round_half_up(self.win_len * self.sample_rate)

    @property
    def frame_step(self) -> int:
        return _round_half_up(self.win_step * self.sample_rate)

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


# The frontend. python_speech_features defines the numbers (its filterbank, its framing with a
# zero-padded last frame, natural log with exact zeros floored at float64 eps, orthonormal DCT-II,
# no lifter); this is the same arithmetic vectorised: frames are strided views of one pre-emphasised
# buffer, the filterbank and DCT matrices are built once per config, and the FFT is real. Everything
# up to the log runs in float64 on purpose: a float32 FFT has a noise floor ~140 dB under the frame's
# energy, above what band-limited speech (telephone channels, the training bank's band-limit
# augmentation) has in its empty bands, and would move those cepstra by more than 1e-4. The float64
# pipeline still costs ~0.2 ms per second of audio on one x86 core (python_speech_features: ~0.85).
# Frames per FFT batch: bounds memory on long audio, and a stream computes the same blocks. 50 divides
# the bundles' window and hop (200/100 frames; the tests' 100/50), so a streamed utterance has every
# sliding window's frames as soon as that window's audio is in (device/streaming.py).
BLOCK_FRAMES = 50
MEL_BANDS = 8  # the triangular filterbank is banded: a few dense (bins x filters) blocks skip its zeros


@dataclass(frozen=True)
class _Matrices:
    window: np.ndarray  # (frame_length,) float64, periodic
    # (first, last) interleaved re/im rows, (first, last) filters, weights: the nonzero blocks of
    # the filterbank (1/n_fft folded in), acting on [re0^2, im0^2, re1^2, ...]
    mel_blocks: tuple[tuple[int, int, int, int, np.ndarray], ...]
    dct: np.ndarray  # (n_filters, n_ceps) orthonormal DCT-II, first n_ceps coefficients


@functools.lru_cache(maxsize=8)
def _matrices(cfg: FeatureConfig) -> _Matrices:
    window = get_window(cfg.window, cfg.frame_length, fftbins=True).astype(np.float64)
    fb = psf.get_filterbanks(cfg.n_filters, cfg.n_fft, cfg.sample_rate, cfg.low_freq, cfg.high_freq) / cfg.n_fft
    weights = np.repeat(fb.T, 2, axis=0)  # rows 2k and 2k+1 weigh re(X_k)^2 and im(X_k)^2
    blocks = []
    for cols in np.array_split(np.arange(cfg.n_filters), min(MEL_BANDS, cfg.n_filters)):
        c0, c1 = int(cols[0]), int(cols[-1]) + 1
        rows = np.flatnonzero(weights[:, c0:c1].any(axis=1))
        r0, r1 = (int(rows[0]), int(rows[-1]) + 1) if len(rows) else (0, 0)  # all-zero filters stay 0 -> eps
        blocks.append((r0, r1, c0, c1, np.ascontiguousarray(weights[r0:r1, c0:c1])))
    dct = np.ascontiguousarray(scipy.fft.dct(np.eye(cfg.n_filters), type=2, norm="ortho", axis=1)[:, :cfg.n_ceps])
    for m in (window, dct, *(b[-1] for b in blocks)):
        m.setflags(write=False)
    return _Matrices(window, tuple(blocks), dct)


def _preemphasis(audio: np.ndarray, coeff: float, previous: float | None, out: np.ndarray) -> None:
    """out[i] = x[i] - coeff * x[i-1]; the first sample passes unchanged unless `previous` continues a stream."""
    if len(audio) == 0:
        return
    out[0] = audio[0] if previous is None else audio[0] - coeff * previous
    np.subtract(audio[1:], coeff * audio[:-1], out=out[1:len(audio)])


def _frames_to_cepstra(signal: np.ndarray, n_frames: int, cfg: FeatureConfig) -> np.ndarray:
    """Cepstra of the `n_frames` frames starting at signal[0] (pre-emphasised float64, long enough)."""
    m = _matrices(cfg)
    step, length = cfg.frame_step, cfg.frame_length
    frames = as_strided(signal, (n_frames, length), (step * signal.strides[0], signal.strides[0]), writeable=False)
    buf = np.zeros((n_frames, cfg.n_fft), np.float64)
    np.multiply(frames, m.window, out=buf[:, :length])
    spec = scipy.fft.rfft(buf, axis=1, overwrite_x=True, workers=1)
    parts = spec.view(np.float64)  # (n_frames, 2 * bins): re, im interleaved
    np.square(parts, out=parts)
    mel = np.zeros((n_frames, cfg.n_filters), np.float64)
    for r0, r1, c0, c1, w in m.mel_blocks:
        np.matmul(parts[:, r0:r1], w, out=mel[:, c0:c1])
    mel[mel == 0] = np.finfo(np.float64).eps  # as python_speech_features: only exact zeros
    np.log(mel, out=mel)
    return mel @ m.dct


def _blocks(signal: np.ndarray, first: int, last: int, cfg: FeatureConfig) -> list[np.ndarray]:
    """Cepstra of frames first..last-1 (signal[0] is frame `first`'s first sample), computed in the
    fixed blocks of BLOCK_FRAMES that start at multiples of BLOCK_FRAMES, so a stream and a whole
    utterance do the same arithmetic on the same groups and agree bit for bit."""
    out = []
    k = first
    while k < last:
        end = min(last, (k // BLOCK_FRAMES + 1) * BLOCK_FRAMES)
        out.append(_frames_to_cepstra(signal[(k - first) * cfg.frame_step:], end - k, cfg))
        k = end
    return out


def log_mel_cepstra(audio: np.ndarray, cfg: FeatureConfig) -> np.ndarray:
    """Un-normalised MFCCs, float64 (frames, n_ceps); frame count as `cfg.n_frames`.

    float64 so that `normalize` (cmvn divides by each coefficient's spread) sees what
    python_speech_features gives even for near-stationary audio; `mfcc` returns float32."""
    return log_mel_cepstra_span(audio, cfg, 0, cfg.n_frames(np.size(audio)))


def log_mel_cepstra_span(audio: np.ndarray, cfg: FeatureConfig, first: int, last: int) -> np.ndarray:
    """Frames `first`..`last`-1 of `log_mel_cepstra(audio, cfg)`, bit for bit, computing only the
    BLOCK_FRAMES blocks that hold them (a training crop needs a window of an utterance's cepstra)."""
    audio = np.asarray(audio, dtype=np.float64).reshape(-1)
    n = cfg.n_frames(len(audio))
    if not 0 <= first <= last <= n:
        raise ValueError(f"frames {first}..{last} outside the audio's {n}")
    if first == last:
        return np.zeros((0, cfg.n_ceps), np.float64)
    begin = first // BLOCK_FRAMES * BLOCK_FRAMES
    end = min(n, -(-last // BLOCK_FRAMES) * BLOCK_FRAMES)
    start = begin * cfg.frame_step
    piece = audio[start:start + (end - begin - 1) * cfg.frame_step + cfg.frame_length]
    signal = np.zeros((end - begin - 1) * cfg.frame_step + cfg.frame_length, np.float64)
    _preemphasis(piece, cfg.preemph, float(audio[start - 1]) if start else None, signal)
    return _concat(_blocks(signal, begin, end, cfg), cfg)[first - begin:last - begin]


def _concat(blocks: list[np.ndarray], cfg: FeatureConfig) -> np.ndarray:
    return np.concatenate(blocks) if blocks else np.zeros((0, cfg.n_ceps), np.float64)


class CepstraStream:
    """`log_mel_cepstra` for audio that arrives in pieces: `push` returns the cepstra of the frames
    completed so far (in whole blocks), `finish` the rest, including the zero-padded last frame.
    The concatenation equals `log_mel_cepstra` of all the audio exactly (same blocks, same arithmetic)."""

    def __init__(self, cfg: FeatureConfig) -> None:
        self.cfg = cfg
        self.n_samples = 0  # samples pushed so far
        self.n_frames = 0  # frames returned so far
        self._signal = np.zeros(0, np.float64)  # pre-emphasised samples from frame `n_frames`'s first sample on
        self._last: float | None = None  # the previous raw sample, for pre-emphasis across pushes

    def push(self, audio: np.ndarray) -> np.ndarray:
        audio = np.asarray(audio, dtype=np.float64).reshape(-1)
        if len(audio) == 0:
            return np.zeros((0, self.cfg.n_ceps), np.float64)
        emphasised = np.empty(len(audio), np.float64)
        _preemphasis(audio, self.cfg.preemph, self._last, emphasised)
        self._last = float(audio[-1])
        self._signal = np.concatenate([self._signal, emphasised])
        self.n_samples += len(audio)
        complete = 0 if self.n_samples < self.cfg.frame_length else \
            1 + (self.n_samples - self.cfg.frame_length) // self.cfg.frame_step
        return self._advance(complete // BLOCK_FRAMES * BLOCK_FRAMES)

    def finish(self) -> np.ndarray:
        """The remaining frames (as if the audio ended here); the stream is spent afterwards."""
        total = self.cfg.n_frames(self.n_samples)
        need = (total - self.n_frames - 1) * self.cfg.frame_step + self.cfg.frame_length
        self._signal = np.concatenate([self._signal, np.zeros(max(0, need - len(self._signal)), np.float64)])
        return self._advance(total)

    def _advance(self, upto: int) -> np.ndarray:
        if upto <= self.n_frames:
            return np.zeros((0, self.cfg.n_ceps), np.float64)
        out = _concat(_blocks(self._signal, self.n_frames, upto, self.cfg), self.cfg)
        self._signal = self._signal[(upto - self.n_frames) * self.cfg.frame_step:]
        self.n_frames = upto
        return out


def reference_cepstra(audio: np.ndarray, cfg: FeatureConfig) -> np.ndarray:
    """`log_mel_cepstra` computed by python_speech_features itself (the frontend this one replaced
    and the models were trained on): slow, for the parity tests and the frontend benchmark."""
    return psf.mfcc(np.asarray(audio, np.float64), samplerate=cfg.sample_rate, winlen=cfg.win_len,
                    winstep=cfg.win_step, numcep=cfg.n_ceps, nfilt=cfg.n_filters, nfft=cfg.n_fft,
                    lowfreq=cfg.low_freq, highfreq=cfg.high_freq, preemph=cfg.preemph, ceplifter=0,
                    appendEnergy=False, winfunc=lambda n: get_window(cfg.window, n, fftbins=True))


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
