"""Golden vectors (tests/golden, made by scripts/make_golden.sh): the committed RHVoice clip's MFCC
matrix and its models/default embedding, reproduced by the device frontend and the shipped model in
both device runtimes. Needs only the device venv: no TensorFlow, no tiny bundle."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.golden import golden
from tests.helpers import DEVICE_PY, REPO, TFLITE_PY, run


def test_golden_vectors_in_this_venv() -> None:
    problems, measured = golden.check()
    assert problems == [], (problems, measured)
    assert measured["mfcc_rel_error"] <= golden.MFCC_RTOL and measured["cosine"] >= golden.MIN_COSINE


@pytest.mark.parametrize("python", [DEVICE_PY, TFLITE_PY], ids=["ai-edge-litert-1.4", "tflite-runtime-2.14"])
def test_golden_vectors_in_both_device_runtimes(python) -> None:
    proc = run([python, REPO / "tests/golden/golden.py", "check"])
    assert proc.returncode == 0, proc.stderr[-2000:]
    measured = json.loads(proc.stderr[proc.stderr.index("golden: {") + len("golden: "):].splitlines()[0])
    want = {DEVICE_PY: "ai_edge_litert 1.4.0", TFLITE_PY: "tflite_runtime 2.14.0"}[python]
    assert measured["runtime"].startswith(want)
    assert measured["mfcc_shape"] == json.loads(golden.META.read_text())["mfcc_shape"]


def test_golden_files_describe_the_shipped_model() -> None:
    meta = json.loads(golden.META.read_text())
    assert meta["model_sha256"] == golden.sha256(REPO / "models/default/model.tflite"), \
        "models/default changed: run scripts/make_golden.sh and commit tests/golden"
    assert meta["features"] == json.loads((REPO / "models/default/model.json").read_text())["features"]
    assert np.load(golden.MFCC).shape == tuple(meta["mfcc_shape"]) and np.load(golden.MFCC).dtype == np.float32
    emb = np.load(golden.EMBEDDING)
    assert emb.shape == (meta["embedding_dim"],) and np.linalg.norm(emb) == pytest.approx(1.0, abs=1e-5)


def test_the_check_catches_a_frontend_change(monkeypatch: pytest.MonkeyPatch) -> None:
    """A frontend off by 0.1 % of the MFCC scale fails the check."""
    real_mfcc = golden.mfcc
    monkeypatch.setattr(golden, "mfcc", lambda audio, cfg: real_mfcc(audio, cfg) * 1.001)
    problems, measured = golden.check()
    assert any(p.startswith("MFCC off by") for p in problems), measured
