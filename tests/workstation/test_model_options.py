"""Capacity options of `python -m train` ("Generalisation III"): attentive statistics pooling and
residual conv blocks convert to builtin ops with a fused LSTM, train, and pass the export's parity
gate in both device runtimes; SpecAugment-style masking is seeded, masks only what it draws, and
never reaches the exported model."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from device.features import FeatureConfig
from export.convert import convert
from export.ops import check_ops, read_ops
from tests.helpers import TINY_TRAIN, TRAIN_PY, log_rows, run
from train.data import CropSampler, SpecMask
from train.model import ModelConfig, build_embedder


def _bank(n_items: int = 6, frames: int = 320) -> tuple[list[list[np.ndarray]], np.ndarray]:
    rng = np.random.default_rng(3)
    bank = [[rng.normal(size=(frames, 20)).astype(np.float16) for _ in range(2)] for _ in range(n_items)]
    return bank, np.arange(n_items, dtype=np.int32)


def test_spec_mask_is_seeded_and_sets_what_it_masks_to_the_crop_mean():
    bank, labels = _bank()
    cfg = FeatureConfig()
    mask = SpecMask(time=20, freq=4)
    masked = CropSampler(bank, labels, cfg, seed=5, mask=mask).batch(8)
    again = CropSampler(bank, labels, cfg, seed=5, mask=mask).batch(8)
    plain = CropSampler(bank, labels, cfg, seed=5).batch(8)
    assert np.array_equal(masked[0], again[0]) and np.array_equal(masked[1], again[1])
    assert np.array_equal(masked[1], plain[1])  # the same crops: masking draws from its own stream
    changed = masked[0] != plain[0]
    assert changed.any()
    for crop, original, where in zip(masked[0], plain[0], changed):
        fill = np.broadcast_to(original.mean(axis=0), original.shape)
        assert np.allclose(crop[where], fill[where])
    other = CropSampler(bank, labels, cfg, seed=6, mask=mask).batch(8)
    assert not np.array_equal(other[0], masked[0])


@pytest.mark.parametrize(("options", "new_ops"), [({"pooling": "attentive"}, {"SOFTMAX", "TANH", "SUM"}),
                                                  ({"conv_blocks": "residual"}, {"LOGISTIC"})])
def test_each_option_converts_to_builtin_ops_with_a_fused_lstm(options, new_ops):
    model = build_embedder(ModelConfig(**options), frames=100, batch_size=1)
    ops = read_ops(convert(model, "dynamic"))
    check_ops(ops)  # builtin only, versions tflite-runtime 2.14 loads, fused LSTM
    assert new_ops <= {o["name"] for o in ops}


def test_attentive_pooling_with_residual_blocks_trains_and_exports_to_both_runtimes(tiny_corpus, tmp_path):
    out = tmp_path / "run"
    proc = run([TRAIN_PY, "-m", "train", "--data", tiny_corpus, "--out", out, "--epochs", "2", *TINY_TRAIN,
                "--pooling", "attentive", "--conv-blocks", "residual"])
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert all(math.isfinite(float(r["loss"])) for r in log_rows(out))
    bundle = tmp_path / "bundle"
    proc = run([TRAIN_PY, "-m", "export", "--run", out, "--out", bundle, "--quant", "dynamic"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    meta = json.loads((bundle / "model.json").read_text())
    assert (meta["model"]["pooling"], meta["model"]["conv_blocks"]) == ("attentive", "residual")
    names = {o["name"] for o in meta["ops"]}
    assert "UNIDIRECTIONAL_SEQUENCE_LSTM" in names and "SOFTMAX" in names
    assert not any(n.startswith("CUSTOM") or n == "WHILE" for n in names)
    assert set(meta["checks"]) >= {"tflite_runtime", "ai_edge_litert"}  # the export ran (and passed) both


def test_spec_augment_trains_and_leaves_the_exported_architecture_alone(tiny_corpus, tmp_path):
    out = tmp_path / "run"
    proc = run([TRAIN_PY, "-m", "train", "--data", tiny_corpus, "--out", out, "--epochs", "2", *TINY_TRAIN,
                "--spec-augment", "--mask-time", "15", "--mask-freq", "3"])
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert all(math.isfinite(float(r["loss"])) for r in log_rows(out))
    cfg = json.loads((out / "config.json").read_text())
    assert (cfg["spec_augment"], cfg["mask_time"], cfg["mask_freq"]) == (True, 15, 3)
    assert ModelConfig.from_dict(cfg["model"]) == ModelConfig(lstm_units=32, embedding_dim=32)  # what export builds
    plain = build_embedder(ModelConfig(lstm_units=32, embedding_dim=32), frames=100, batch_size=1)
    plain.load_weights(str(out / "best.weights.h5"))  # the trained weights fit the model without the flag
