"""device/features.py: the config travels as JSON and unsupported configs are refused."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from device.features import FeatureConfig, FeatureConfigError, mfcc


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
