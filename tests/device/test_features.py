"""device/features.py: the config travels as JSON, unsupported configs are refused, and the
vectorised frontend gives python_speech_features' numbers (which the models were trained on) for
any config the bundle contract allows, whole or streamed."""

from __future__ import annotations

import functools
import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.signal import butter, sosfilt

from device.audio import load_audio
from device.features import (
    BLOCK_FRAMES,
    CepstraStream,
    FeatureConfig,
    FeatureConfigError,
    log_mel_cepstra,
    log_mel_cepstra_span,
    mfcc,
    normalize,
    reference_cepstra,
)

SPEECH = Path(__file__).resolve().parents[2] / "device" / "demo_clips" / "alan-enroll-1.flac"
RTOL = 1e-4  # of the largest reference value
ATOL = 1e-6  # for references that normalisation cancels to rounding noise (constant coefficients: empty filters)


def test_config_round_trips_through_json():
    cfg = FeatureConfig(norm="cmvn", n_ceps=13)
    assert FeatureConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg


@pytest.mark.parametrize("change, problem", [
    ({"sample_rate": 8000}, "sample_rate 8000"),
    ({"window": "blackman"}, "window 'blackman'"),
    ({"norm": "pcen"}, "norm 'pcen'"),
    ({"n_ceps": 60, "n_filters": 40}, "n_ceps 60"),
    ({"schema": 99}, "feature schema 99"),
    ({"high_freq": 12000.0}, "band"),
    ({"n_fft": 128}, "n_fft 128"),
])
def test_unsupported_configs_are_refused(change, problem):
    with pytest.raises(FeatureConfigError, match=problem):
        FeatureConfig.from_dict({**FeatureConfig().to_dict(), **change})


def test_unknown_keys_and_wrong_types_are_refused():
    with pytest.raises(FeatureConfigError, match="unknown keys"):
        FeatureConfig.from_dict({**FeatureConfig().to_dict(), "dither": 1})
    with pytest.raises(FeatureConfigError):
        FeatureConfig.from_dict({**FeatureConfig().to_dict(), "n_ceps": "twenty"})


def test_shape_frames_and_normalisation():
    cfg = FeatureConfig()
    audio = np.random.default_rng(0).standard_normal(16000).astype(np.float32) * 0.1
    feats = mfcc(audio, cfg)
    assert feats.shape == (cfg.n_frames(16000), cfg.n_ceps) == (99, 20)
    assert feats.dtype == np.float32
    assert np.allclose(feats.mean(axis=0), 0, atol=1e-4)


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 20000), st.sampled_from(["none", "cmn", "cmvn"]))
def test_property_any_length_gives_finite_features(n, norm):
    cfg = FeatureConfig(norm=norm)
    audio = np.random.default_rng(n).uniform(-1, 1, n).astype(np.float32)
    feats = mfcc(audio, cfg)
    assert feats.shape == (cfg.n_frames(n), cfg.n_ceps)
    assert np.isfinite(feats).all()


@functools.lru_cache(maxsize=1)
def signals() -> dict[str, np.ndarray]:
    """1.5 s of real speech; the same through a telephone band-pass (near-empty bands, where a
    float32 FFT's noise floor would show); the same after 0.3 s of digital silence (all-zero frames)."""
    speech = load_audio(SPEECH)[4000:28000]
    telephone = sosfilt(butter(6, [300.0, 3400.0], btype="bandpass", fs=16000, output="sos"), speech)
    return {"speech": speech, "telephone": telephone.astype(np.float32),
            "silence_first": np.concatenate([np.zeros(4800, np.float32), speech])}


@st.composite
def contract_configs(draw: st.DrawFn) -> FeatureConfig:
    """Any FeatureConfig a bundle may carry (FeatureConfig.__post_init__), with frames of 5-100 ms."""
    win_len = draw(st.floats(0.005, 0.1))
    win_step = draw(st.floats(0.0025, win_len))
    frame_length = FeatureConfig(win_len=win_len, win_step=win_step, n_fft=4096).frame_length
    n_fft = draw(st.one_of(st.integers(frame_length, frame_length + 64),
                           st.sampled_from([n for n in (256, 512, 1024, 2048, 4096) if n >= frame_length])))
    n_filters = draw(st.integers(1, 128))
    low = draw(st.floats(0.0, 7000.0))
    return FeatureConfig(win_len=win_len, win_step=win_step, n_fft=n_fft, n_filters=n_filters,
                         n_ceps=draw(st.integers(1, n_filters)), low_freq=low,
                         high_freq=draw(st.floats(low + 100.0, 8000.0)), preemph=draw(st.floats(0.0, 0.99)),
                         window=draw(st.sampled_from(["hann", "hamming"])),
                         norm=draw(st.sampled_from(["none", "cmn", "cmvn"])))


def assert_close(ours: np.ndarray, ref: np.ndarray) -> None:
    assert ours.shape == ref.shape
    err = np.abs(ours.astype(np.float64) - ref).max()
    assert err <= RTOL * np.abs(ref).max() + ATOL, f"max error {err:.3g} against reference max {np.abs(ref).max():.3g}"


@pytest.mark.parametrize("kind", ["speech", "telephone", "silence_first"])
def test_shipped_config_matches_python_speech_features(kind):
    cfg = FeatureConfig()
    audio = signals()[kind]
    ref = reference_cepstra(audio, cfg)
    assert ref.shape == (cfg.n_frames(len(audio)), 20)
    assert_close(log_mel_cepstra(audio, cfg), ref)
    ours = mfcc(audio, cfg)
    assert ours.dtype == np.float32
    assert_close(ours, normalize(ref, cfg))


@settings(max_examples=40, deadline=None)
@given(contract_configs(), st.sampled_from(["speech", "telephone", "silence_first"]))
def test_any_contract_config_matches_python_speech_features(cfg, kind):
    audio = signals()[kind]
    ref = reference_cepstra(audio, cfg)
    assert_close(log_mel_cepstra(audio, cfg), ref)
    assert_close(mfcc(audio, cfg), normalize(ref, cfg))


def test_frame_length_rounds_half_up_like_python_speech_features():
    cfg = FeatureConfig(win_len=0.0253125, win_step=0.0100625)  # 405.0 and 161.0 samples
    half = FeatureConfig(win_len=405.5 / 16000, win_step=160.5 / 16000)
    assert (cfg.frame_length, cfg.frame_step) == (405, 161)
    assert (half.frame_length, half.frame_step) == (406, 161)
    audio = signals()["speech"]
    assert_close(log_mel_cepstra(audio, half), reference_cepstra(audio, half))


@settings(max_examples=30, deadline=None)
@given(contract_configs(), st.integers(0, 20000), st.lists(st.integers(1, 5000), min_size=1, max_size=40))
def test_streamed_cepstra_equal_whole_utterance_exactly(cfg, n, sizes):
    audio = signals()["speech"][:n]
    stream, parts, i = CepstraStream(cfg), [], 0
    while i < n:
        size = sizes[len(parts) % len(sizes)]
        parts.append(stream.push(audio[i:i + size]))
        i += size
        assert stream.n_frames == sum(len(p) for p in parts)
    parts.append(stream.finish())
    streamed = np.concatenate(parts)
    whole = log_mel_cepstra(audio, cfg)
    assert streamed.shape == whole.shape == (cfg.n_frames(n), cfg.n_ceps)
    assert np.array_equal(streamed, whole)


@pytest.mark.parametrize("n", [300, 16000, 52777])
def test_a_span_of_cepstra_equals_the_whole_utterances_frames_exactly(n):
    cfg = FeatureConfig()
    audio = np.concatenate(list(signals().values()))[:n]
    whole = log_mel_cepstra(audio, cfg)
    total = len(whole)
    edges = sorted({0, 1, BLOCK_FRAMES - 1, BLOCK_FRAMES, BLOCK_FRAMES + 1, total // 2, total - 1, total} & set(range(total + 1)))
    for first in edges:
        for last in [e for e in edges if e >= first]:
            span = log_mel_cepstra_span(audio, cfg, first, last)
            assert span.shape == (last - first, cfg.n_ceps)
            assert np.array_equal(span, whole[first:last])
    with pytest.raises(ValueError, match="outside"):
        log_mel_cepstra_span(audio, cfg, 0, total + 1)
