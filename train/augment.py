"""Waveform augmentation for 16 kHz float32 mono audio (numpy/scipy only).

Every random choice is drawn from a caller-supplied `numpy.random.Generator`, so the same seed
gives the same output. All functions keep the input length except `speed` and `random_crop`.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
from scipy.signal import butter, fftconvolve, resample_poly, sosfilt

SR = 16000
NOISE_KINDS = ("white", "pink", "babble")
TRIAL_SNR_DB = 10.0
_EPS = 1e-12


def _power(x: np.ndarray) -> float:
    return float(np.mean(np.square(x, dtype=np.float64)))


def _f32(x: np.ndarray) -> np.ndarray:
    return np.asarray(x, dtype=np.float32)


def pink_noise(n: int, rng: np.random.Generator) -> np.ndarray:
    """Gaussian noise shaped to a 1/f power spectrum in the frequency domain."""
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.arange(spec.size, dtype=np.float64)
    f[0] = 1.0
    spec = spec / np.sqrt(f)
    spec[0] = 0.0
    return np.fft.irfft(spec, n)


def _babble(n: int, rng: np.random.Generator, clips: list[np.ndarray]) -> np.ndarray:
    """Sum of a few other-speaker clips, each looped to length n from a random offset at equal power."""
    if not clips:
        raise ValueError("babble noise needs at least one other-speaker clip")
    picks = rng.choice(len(clips), size=min(len(clips), int(rng.integers(3, 6))), replace=False)
    out = np.zeros(n)
    for i in picks:
        clip = np.asarray(clips[i], dtype=np.float64)
        if clip.size == 0 or _power(clip) < _EPS:
            continue
        start = int(rng.integers(0, clip.size))
        looped = np.resize(np.roll(clip, -start), n)
        out += looped / np.sqrt(_power(looped) + _EPS)
    return out


def add_noise(audio: np.ndarray, rng: np.random.Generator, snr_db: float, kind: str = "white",
              babble: list[np.ndarray] | None = None) -> np.ndarray:
    """Add `kind` noise (white, pink or babble from `babble` clips) at exactly `snr_db` dB SNR.

    Silent input is returned unchanged: an SNR relative to zero signal power is undefined.
    """
    if kind not in NOISE_KINDS:
        raise ValueError(f"noise kind must be one of {NOISE_KINDS}, got {kind!r}")
    x = np.asarray(audio, dtype=np.float64)
    signal_power = _power(x)
    if x.size == 0 or signal_power < _EPS:
        return _f32(audio).copy()
    if kind == "white":
        noise = rng.standard_normal(x.size)
    elif kind == "pink":
        noise = pink_noise(x.size, rng)
    else:
        noise = _babble(x.size, rng, babble or [])
    return mix_at_snr(x, noise, snr_db)


def mix_at_snr(audio: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """`audio` plus `noise` (same length) scaled to exactly `snr_db` dB SNR; silent input or noise
    leaves the audio unchanged."""
    x = np.asarray(audio, dtype=np.float64)
    signal_power, noise_power = _power(x), _power(noise)
    if x.size == 0 or signal_power < _EPS or noise_power < _EPS:
        return _f32(x).copy()
    scale = np.sqrt(signal_power / (noise_power * 10.0 ** (snr_db / 10.0)))
    return _f32(x + scale * np.asarray(noise, dtype=np.float64))


def synthetic_rir(rng: np.random.Generator, rt60: float | None = None, sr: int = SR) -> np.ndarray:
    """A room impulse response: direct path plus exponentially decaying noise, unit energy.

    `rt60` (time for a 60 dB decay) is drawn from 0.2-0.8 s when not given.
    """
    rt60 = float(rng.uniform(0.2, 0.8) if rt60 is None else rt60)
    if rt60 <= 0:
        raise ValueError(f"rt60 must be positive, got {rt60}")
    t = np.arange(max(2, int(rt60 * sr))) / sr
    rir = rng.standard_normal(t.size) * np.exp(-np.log(1000.0) * t / rt60) * 0.3
    rir[0] = 1.0
    return _f32(rir / np.sqrt(np.sum(rir**2)))


def reverb(audio: np.ndarray, rng: np.random.Generator, rt60: float | None = None) -> np.ndarray:
    """Convolve with a `synthetic_rir`, keeping the original length and RMS level."""
    x = np.asarray(audio, dtype=np.float64)
    if x.size == 0:
        return _f32(x)
    wet = fftconvolve(x, synthetic_rir(rng, rt60).astype(np.float64))[: x.size]
    wet_power = _power(wet)
    if wet_power < _EPS:
        return _f32(x)
    return _f32(wet * np.sqrt(_power(x) / wet_power))


def band_limit(audio: np.ndarray, kind: str, rng: np.random.Generator | None = None, sr: int = SR) -> np.ndarray:
    """'telephone': 300-3400 Hz band-pass; 'lowpass': low-pass at a random 2.5-6 kHz (4 kHz without rng)."""
    if kind == "telephone":
        sos = butter(6, [300.0, 3400.0], btype="bandpass", fs=sr, output="sos")
    elif kind == "lowpass":
        cutoff = float(rng.uniform(2500.0, 6000.0)) if rng is not None else 4000.0
        sos = butter(8, cutoff, btype="lowpass", fs=sr, output="sos")
    else:
        raise ValueError(f"band_limit kind must be 'telephone' or 'lowpass', got {kind!r}")
    return _f32(sosfilt(sos, np.asarray(audio, dtype=np.float64)))


def gain(audio: np.ndarray, db: float) -> np.ndarray:
    """Scale by `db` decibels (no clipping; see `Augmenter` for the clipping guard)."""
    return _f32(np.asarray(audio, dtype=np.float64) * 10.0 ** (db / 20.0))


def speed(audio: np.ndarray, factor: float) -> np.ndarray:
    """Kaldi-style speed perturbation: resample so duration is 1/factor, shifting pitch and tempo together."""
    if factor <= 0:
        raise ValueError(f"speed factor must be positive, got {factor}")
    if factor == 1.0:
        return _f32(audio).copy()
    ratio = Fraction(factor).limit_denominator(100)
    return _f32(resample_poly(np.asarray(audio, dtype=np.float64), ratio.denominator, ratio.numerator))


def random_crop(audio: np.ndarray, rng: np.random.Generator, min_s: float, max_s: float, sr: int = SR) -> np.ndarray:
    """A random window of min_s-max_s seconds; audio shorter than the drawn length is returned whole."""
    if not 0 < min_s <= max_s:
        raise ValueError(f"need 0 < min_s <= max_s, got {min_s}, {max_s}")
    n = int(round(rng.uniform(min_s, max_s) * sr))
    x = _f32(audio)
    if x.size <= n:
        return x.copy()
    start = int(rng.integers(0, x.size - n + 1))
    return x[start: start + n].copy()


def clip_safe(x: np.ndarray, peak: float = 0.99) -> np.ndarray:
    """Scale down to `peak` when anything would clip."""
    top = float(np.max(np.abs(x))) if x.size else 0.0
    return _f32(x * (peak / top)) if top > peak else _f32(x)


def noisy_trial_version(audio: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The 'noisy' evaluation condition: synthetic reverb, then white or pink noise at exactly 10 dB SNR."""
    wet = reverb(audio, rng)
    noisy = add_noise(wet, rng, TRIAL_SNR_DB, kind=str(rng.choice(["white", "pink"])))
    return clip_safe(noisy)


class Augmenter:
    """A random chain for training copies: reverb (p 0.5; with `p_channel`, half the time a room with
    early reflections from a pool of pyroomacoustics rooms instead), noise at 0-20 dB SNR (p 0.8),
    band-limiting (p 0.3), with probability `p_channel` a cheap microphone (half) or a codec round
    trip through sox (half: it costs a few hundred ms), gain of +-10 dB, then a peak guard so nothing
    clips."""

    def __init__(self, rng: np.random.Generator, babble_pool: list[np.ndarray] | None = None,
                 p_noise: float = 0.8, p_reverb: float = 0.5, p_band: float = 0.3, p_channel: float = 0.0) -> None:
        self.rng = rng
        self.babble_pool = list(babble_pool or [])
        self.p_noise, self.p_reverb, self.p_band, self.p_channel = p_noise, p_reverb, p_band, p_channel

    def __call__(self, audio: np.ndarray) -> np.ndarray:
        from train import channels  # pyroomacoustics only when channel augmentation is asked for

        rng = self.rng
        x = _f32(audio)
        if rng.random() < self.p_reverb:
            x = channels.room(x, rng, pooled=True) if self.p_channel and rng.random() < 0.5 else reverb(x, rng)
        if rng.random() < self.p_noise:
            kinds = NOISE_KINDS if self.babble_pool else NOISE_KINDS[:2]
            x = add_noise(x, rng, float(rng.uniform(0.0, 20.0)), str(rng.choice(kinds)), self.babble_pool)
        if rng.random() < self.p_band:
            x = band_limit(x, str(rng.choice(["telephone", "lowpass"])), rng)
        if self.p_channel and rng.random() < self.p_channel:
            kind = "mic" if rng.random() < 0.5 else str(rng.choice(channels.CODECS))
            x = channels.channel(x, kind, rng)
        return clip_safe(gain(x, float(rng.uniform(-10.0, 10.0))))
