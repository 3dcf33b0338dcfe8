"""Channel and room augmentation: levels as specified, lengths kept, seeded."""

from __future__ import annotations

import numpy as np
import pytest

from train import channels
from train.augment import Augmenter, mix_at_snr

SR = 16000


def _speech_like(seconds: float = 2.0, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    envelope = 0.5 * (1 + np.sin(2 * np.pi * 3 * t))
    tone = sum(np.sin(2 * np.pi * f * t) / k for k, f in enumerate((180, 360, 720, 1500, 2600), 1))
    return (0.2 * envelope * tone + 0.01 * rng.standard_normal(t.size)).astype(np.float32)


@pytest.mark.parametrize("snr", [0.0, 7.5, 15.0])
def test_mix_at_snr_is_exact(snr: float) -> None:
    x, noise = _speech_like(), np.random.default_rng(1).standard_normal(2 * SR)
    y = mix_at_snr(x, noise, snr)
    measured = 10 * np.log10(np.mean(x.astype(np.float64) ** 2) / np.mean((y - x).astype(np.float64) ** 2))
    assert measured == pytest.approx(snr, abs=0.01)


def test_room_impulse_response_has_unit_energy_and_a_direct_path() -> None:
    rir = channels.room_impulse_response(np.random.default_rng(0))
    assert np.sum(rir**2) == pytest.approx(1.0)
    assert int(np.argmax(np.abs(rir))) < 0.05 * SR  # direct path within 17 m of travel
    assert np.array_equal(rir, channels.room_impulse_response(np.random.default_rng(0)))


def test_room_keeps_length_and_level() -> None:
    x = _speech_like()
    y = channels.room(x, np.random.default_rng(2))
    assert y.shape == x.shape
    assert np.sqrt(np.mean(y**2)) == pytest.approx(np.sqrt(np.mean(x**2)), rel=1e-3)


@pytest.mark.parametrize("kind", channels.HOUSEHOLD)
def test_household_noise_kinds(kind: str) -> None:
    n = np.random.default_rng(3).standard_normal(SR).astype(np.float32)
    noise = channels.household_noise(SR, np.random.default_rng(4), [n], kind)
    assert noise.shape == (SR,) and np.std(noise) > 0.1


def test_noisy_room_stays_within_the_snr_range() -> None:
    x = _speech_like()
    for seed in range(5):
        y = channels.noisy_room(x, np.random.default_rng(seed), [_speech_like(seed=9)], snr_range=(5.0, 5.0))
        assert y.shape == x.shape and np.max(np.abs(y)) <= 0.99 + 1e-6


@pytest.mark.parametrize("kind", channels.CODECS)
def test_codec_round_trip_keeps_length_and_most_of_the_signal(kind: str) -> None:
    x = _speech_like()
    y = channels.codec(x, kind)
    assert y.shape == x.shape and y.dtype == np.float32
    level = np.sqrt(np.mean(y**2)) / np.sqrt(np.mean(x**2))
    assert 0.3 < level < 1.5
    if kind in ("mulaw", "gsm"):  # waveform codecs / no look-ahead: the samples line up
        assert np.corrcoef(x, y)[0, 1] > 0.9


def test_narrowband_codecs_remove_the_top_band() -> None:
    x = np.random.default_rng(5).standard_normal(2 * SR).astype(np.float32) * 0.1
    for kind in ("gsm", "amr-nb", "mulaw"):
        spectrum = np.abs(np.fft.rfft(channels.codec(x, kind))) ** 2
        freqs = np.fft.rfftfreq(x.size, 1 / SR)
        assert spectrum[freqs > 4500].sum() < 0.01 * spectrum[freqs < 3500].sum(), kind


def test_cheap_mic_cuts_the_lows_and_is_seeded() -> None:
    x = np.random.default_rng(6).standard_normal(2 * SR).astype(np.float32) * 0.1
    y = channels.cheap_mic(x, np.random.default_rng(7))
    spectrum, freqs = np.abs(np.fft.rfft(y)) ** 2, np.fft.rfftfreq(x.size, 1 / SR)
    assert spectrum[freqs < 80].mean() < 0.1 * spectrum[(freqs > 1000) & (freqs < 2000)].mean()
    assert np.array_equal(y, channels.cheap_mic(x, np.random.default_rng(7)))
    with pytest.raises(ValueError):
        channels.codec(x, "mp3")


def test_augmenter_with_channels_is_seeded() -> None:
    x = _speech_like()
    a = Augmenter(np.random.default_rng(8), [x[::-1]], p_channel=1.0)(x)
    b = Augmenter(np.random.default_rng(8), [x[::-1]], p_channel=1.0)(x)
    assert np.array_equal(a, b) and a.shape == x.shape
