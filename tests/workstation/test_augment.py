"""Waveform augmentation: exact SNR, determinism, lengths, level preservation."""

from __future__ import annotations

import numpy as np
import pytest

from train.augment import (
    Augmenter,
    add_noise,
    band_limit,
    gain,
    noisy_trial_version,
    random_crop,
    reverb,
    speed,
    synthetic_rir,
)

SR = 16000


def _tone(seconds: float = 2.0, seed: int = 0) -> np.ndarray:
    """A speech-like test signal: a few harmonics with a slow amplitude envelope."""
    t = np.arange(int(seconds * SR)) / SR
    rng = np.random.default_rng(seed)
    x = sum(np.sin(2 * np.pi * f * t + rng.uniform(0, 6)) / (k + 1) for k, f in enumerate((140, 280, 420, 900)))
    return (0.3 * x * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t)) / 2).astype(np.float32)


def _snr(clean: np.ndarray, noisy: np.ndarray) -> float:
    noise = noisy.astype(np.float64) - clean.astype(np.float64)
    return 10 * np.log10(np.mean(clean.astype(np.float64) ** 2) / np.mean(noise**2))


@pytest.mark.parametrize("kind", ["white", "pink", "babble"])
@pytest.mark.parametrize("snr", [0.0, 10.0, 20.0])
def test_add_noise_hits_requested_snr(kind: str, snr: float) -> None:
    x = _tone()
    babble = [_tone(1.3, seed=s) for s in range(1, 5)]
    y = add_noise(x, np.random.default_rng(1), snr, kind, babble=babble)
    assert y.dtype == np.float32 and y.shape == x.shape
    assert abs(_snr(x, y) - snr) < 0.5


def test_add_noise_rejects_bad_kind_and_missing_babble() -> None:
    with pytest.raises(ValueError):
        add_noise(_tone(), np.random.default_rng(0), 10, "brown")
    with pytest.raises(ValueError):
        add_noise(_tone(), np.random.default_rng(0), 10, "babble")


def test_add_noise_leaves_silence_alone() -> None:
    x = np.zeros(SR, dtype=np.float32)
    assert np.array_equal(add_noise(x, np.random.default_rng(0), 5), x)


def test_same_seed_same_output() -> None:
    x = _tone()
    for fn in (lambda r: add_noise(x, r, 5, "pink"), lambda r: reverb(x, r), noisy_trial_version,
               lambda r: Augmenter(r, [_tone(1, 3)])(x)):
        if fn is noisy_trial_version:
            a, b = fn(x, np.random.default_rng(7)), fn(x, np.random.default_rng(7))
        else:
            a, b = fn(np.random.default_rng(7)), fn(np.random.default_rng(7))
        assert np.array_equal(a, b)
    assert not np.array_equal(reverb(x, np.random.default_rng(1)), reverb(x, np.random.default_rng(2)))


def test_rir_and_reverb_keep_level_and_length() -> None:
    rng = np.random.default_rng(0)
    rir = synthetic_rir(rng, rt60=0.5)
    assert rir.size == int(0.5 * SR) and abs(np.sum(rir.astype(np.float64) ** 2) - 1) < 1e-4
    x = _tone()
    y = reverb(x, rng)
    assert y.shape == x.shape
    assert abs(np.sqrt(np.mean(y**2)) / np.sqrt(np.mean(x**2)) - 1) < 0.01


def test_band_limit_removes_out_of_band_energy() -> None:
    noise = np.random.default_rng(0).standard_normal(SR).astype(np.float32)
    for kind in ("telephone", "lowpass"):
        y = band_limit(noise, kind, np.random.default_rng(1))
        spec = np.abs(np.fft.rfft(y)) ** 2
        freqs = np.fft.rfftfreq(y.size, 1 / SR)
        assert y.shape == noise.shape
        assert spec[freqs > 7000].sum() < 0.01 * spec.sum()
    with pytest.raises(ValueError):
        band_limit(noise, "radio")


def test_gain_speed_crop() -> None:
    x = _tone()
    assert np.allclose(gain(x, 6.0206), 2 * x, atol=1e-5)
    assert abs(speed(x, 1.1).size - round(x.size / 1.1)) <= 1
    assert abs(speed(x, 0.9).size - round(x.size / 0.9)) <= 1
    assert np.array_equal(speed(x, 1.0), x)
    rng = np.random.default_rng(0)
    for _ in range(20):
        c = random_crop(x, rng, 0.5, 1.5)
        assert int(0.5 * SR) <= c.size <= int(1.5 * SR) + 1
    assert random_crop(x[:100], rng, 1, 2).size == 100


def test_noisy_trial_version_is_ten_db_and_augmenter_never_clips() -> None:
    x = _tone()
    y = noisy_trial_version(x, np.random.default_rng(3))
    assert y.shape == x.shape and np.max(np.abs(y)) <= 1.0
    wet = reverb(x, np.random.default_rng(3))  # the same draws noisy_trial_version makes first
    assert abs(_snr(wet, y) - 10.0) < 0.5
    aug = Augmenter(np.random.default_rng(0), [_tone(1, s) for s in range(3)])
    loud = np.clip(x * 3, -1, 1)
    for _ in range(30):
        out = aug(loud)
        assert out.shape == loud.shape and out.dtype == np.float32
        assert np.max(np.abs(out)) <= 0.99 + 1e-6
