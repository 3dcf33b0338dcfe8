"""Export: fused LSTM, builtin ops only, the 2.14 op-version gate, all four modes checked in both
device runtimes."""

from __future__ import annotations

import json

import pytest

from export.convert import convert
from export.ops import OpGateError, check_ops, read_ops
from tests.helpers import TRAIN_PY, run
from train.keras_env import tf
from train.model import ModelConfig, build_embedder


def test_default_tiny_bundle_has_a_fused_lstm(tiny_bundle):
    meta = json.loads((tiny_bundle / "model.json").read_text())
    names = {o["name"] for o in meta["ops"]}
    assert "UNIDIRECTIONAL_SEQUENCE_LSTM" in names and "WHILE" not in names
    assert not any(n.startswith("CUSTOM") for n in names)
    assert meta["quantization"] == "dynamic"
    fc = [o for o in meta["ops"] if o["name"] == "FULLY_CONNECTED"][0]
    assert fc["version"] <= 11
    for key in ("features", "window", "embedding_dim", "io", "thresholds", "cohort", "sha256", "min_runtime",
                "trained_on", "checks"):
        assert key in meta, key


def test_gate_refuses_ops_the_2_14_runtime_cannot_load():
    with pytest.raises(OpGateError, match="FULLY_CONNECTED v12 is newer than tflite-runtime 2.14"):
        check_ops([{"name": "FULLY_CONNECTED", "version": 12}, {"name": "UNIDIRECTIONAL_SEQUENCE_LSTM", "version": 1}])
    with pytest.raises(OpGateError, match="WHILE loop"):
        check_ops([{"name": "WHILE", "version": 1}])
    with pytest.raises(OpGateError, match="no fused UNIDIRECTIONAL_SEQUENCE_LSTM"):
        check_ops([{"name": "FULLY_CONNECTED", "version": 1}])


def test_per_channel_dense_quantization_is_what_the_gate_catches():
    """Without the converter flag, dynamic-range quantization really emits FULLY_CONNECTED v12."""
    model = build_embedder(ModelConfig(), frames=50, batch_size=1)  # big enough that dense weights get quantized
    c = tf.lite.TFLiteConverter.from_keras_model(model)
    c.optimizations = [tf.lite.Optimize.DEFAULT]
    ops = read_ops(c.convert())
    assert any(o["name"] == "FULLY_CONNECTED" and o["version"] >= 12 for o in ops)
    with pytest.raises(OpGateError):
        check_ops(ops)
    assert all(o["version"] <= 11 for o in read_ops(convert(model, "dynamic")) if o["name"] == "FULLY_CONNECTED")


@pytest.mark.parametrize("mode", ["float32", "float16", "int8"])
def test_every_mode_exports_and_passes_parity_in_both_runtimes(tiny_run, tmp_path, mode):
    out = tmp_path / f"tiny-{mode}"
    proc = run([TRAIN_PY, "-m", "export", "--run", tiny_run, "--out", out, "--quant", mode])
    assert proc.returncode == 0, proc.stderr[-3000:]
    meta = json.loads((out / "model.json").read_text())
    assert meta["quantization"] == mode
    # checked in the exact runtimes the Pi installs (requirements-device.txt, its fallback), which the
    # bundle then demands
    pi = {"ai_edge_litert": "1.4.0", "tflite_runtime": "2.14.0"}
    assert {rt: meta["checks"][rt]["version"] for rt in pi} == pi == meta["min_runtime"]
    if mode == "int8":
        assert meta["io"]["input"]["dtype"] == "int8" and meta["io"]["input"]["scale"] > 0


def test_unknown_mode_and_missing_run_fail_clearly(tmp_path):
    proc = run([TRAIN_PY, "-m", "export", "--run", tmp_path, "--out", tmp_path / "x", "--quant", "int4"])
    assert proc.returncode != 0 and "invalid choice: 'int4'" in proc.stderr
    proc = run([TRAIN_PY, "-m", "export", "--run", tmp_path, "--out", tmp_path / "x"])
    assert proc.returncode != 0 and "export failed" in proc.stderr


def test_the_parity_gate_refuses_and_installs_nothing(tiny_run, tmp_path):
    """No embedding can match the Keras model better than cosine 1: a bar above it must fail the
    export in the first runtime it checks and leave nothing at --out."""
    out = tmp_path / "refused"
    proc = run([TRAIN_PY, "-m", "export", "--run", tiny_run, "--out", out, "--quant", "float32",
                "--parity-min", "1.001"])
    assert proc.returncode != 0 and "export failed" in proc.stderr and "< 1.001" in proc.stderr
    assert not out.exists() and not out.with_name(out.name + ".partial").exists()
