"""The device embedder on a real exported bundle, in both real runtimes."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from device.audio import load_audio
from device.bundle import Bundle, BundleError
from device.calibration import Calibration
from device.embedder import Embedder, window_starts
from device.scoring import Scorer
from tests.helpers import TFLITE_PY, run


def test_runs_in_the_pis_runtime_ai_edge_litert_1_4_with_numpy_1(tiny_bundle):
    emb = Embedder(tiny_bundle)
    assert emb.runtime.name == "ai_edge_litert" and emb.runtime.version == "1.4.0"
    assert np.__version__.startswith("1.")


def test_short_and_long_audio(tiny_bundle, tiny_corpus):
    emb = Embedder(tiny_bundle, threads=2)
    speech = load_audio(next(tiny_corpus.glob("*/*.wav")))
    short = emb.embed_audio(speech[: 16000 // 4])
    assert short.padded and short.n_windows == 1
    long = emb.embed_audio(np.tile(speech, 5))
    assert not long.padded and long.n_windows > 3
    for e in (short, long):
        assert e.vector.shape == (emb.embedding_dim,) and abs(np.linalg.norm(e.vector) - 1) < 1e-5


def test_window_starts_cover_the_whole_utterance():
    assert window_starts(50, 100, 50) == [0]
    assert window_starts(100, 100, 50) == [0]
    assert window_starts(260, 100, 50) == [0, 50, 100, 150, 160]


def test_the_fallback_tflite_runtime_gives_the_same_embedding(tiny_bundle, tiny_corpus, tmp_path):
    wav = next(tiny_corpus.glob("*/*.wav"))
    ours = Embedder(tiny_bundle).embed(load_audio(wav))
    code = ("import sys, numpy as np; from device.embedder import Embedder; from device.audio import load_audio; "
            "e = Embedder(sys.argv[1], runtime='tflite_runtime'); "
            "np.save(sys.argv[3], e.embed(load_audio(sys.argv[2]))); print(e.runtime.name, np.__version__)")
    proc = run([TFLITE_PY, "-c", code, tiny_bundle, wav, tmp_path / "v.npy"])
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split()[0] == "tflite_runtime"
    theirs = np.load(tmp_path / "v.npy")
    assert float(ours @ theirs) > 0.999


def test_thresholds_and_cohort_are_used(tiny_bundle):
    bundle = Bundle.load(tiny_bundle)
    meta = json.loads((tiny_bundle / "model.json").read_text())
    assert bundle.cohort is not None
    calibration = Calibration.from_dict(meta["score_calibration"])  # the export picked the scoring
    assert Scorer.for_bundle(bundle).kind == bundle.scoring == calibration.scoring == meta["calibration_report"]["chosen"]
    assert bundle.threshold("far1") == pytest.approx(calibration.threshold_for_household(0.01, 1))
    assert bundle.threshold("far1", enrolled=4) == pytest.approx(calibration.threshold_for_household(0.01, 4))
    assert bundle.threshold("eer") == pytest.approx(calibration.eer_threshold)
    assert bundle.threshold(0.42) == 0.42
    with pytest.raises(BundleError, match="no 'strict' threshold"):
        bundle.threshold("strict")


def edited(tiny_bundle, tmp_path, change):
    copy = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, copy)
    meta = json.loads((copy / "model.json").read_text())
    change(copy, meta)
    (copy / "model.json").write_text(json.dumps(meta))
    return copy


def flip_byte(copy, meta):
    data = bytearray((copy / "model.tflite").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (copy / "model.tflite").write_bytes(bytes(data))


@pytest.mark.parametrize("change, problem", [
    (flip_byte, "sha256 .* does not match model.json"),
    (lambda c, m: m.update(schema=3), "bundle schema 3"),
    (lambda c, m: m["features"].update(window="blackman"), "unsupported feature config: window 'blackman'"),
    (lambda c, m: m["features"].update(sample_rate=8000), "sample_rate 8000"),
    (lambda c, m: m["min_runtime"].update(ai_edge_litert="9.0.0"), "needs ai_edge_litert >= 9.0.0"),
    (lambda c, m: (c / "cohort.npy").unlink(), "cohort file cohort.npy named in model.json is missing"),
    (lambda c, m: m.update(window={"frames": 7, "hop": 3}), "input shape"),
    (lambda c, m: m.pop("sha256"), "missing or malformed field"),
])
def test_refuses_bundles_it_cannot_honour(tiny_bundle, tmp_path, change, problem):
    with pytest.raises(BundleError, match=problem):
        Embedder(edited(tiny_bundle, tmp_path, change))


def test_not_a_bundle(tmp_path):
    with pytest.raises(BundleError, match="not a model bundle"):
        Bundle.load(tmp_path)
    (tmp_path / "model.json").write_text("{not json")
    with pytest.raises(BundleError, match="unreadable JSON"):
        Bundle.load(tmp_path)


def test_window_embedding_does_not_depend_on_the_previous_call(tiny_bundle):
    """The fused TFLite LSTM keeps state in variable tensors; each window must start fresh."""
    emb = Embedder(tiny_bundle)
    rng = np.random.default_rng(1)
    a, b = (rng.standard_normal((emb.window_frames, emb.features.n_ceps)).astype(np.float32) for _ in range(2))
    first = emb.embed_window(a)
    emb.embed_window(b)
    assert np.array_equal(emb.embed_window(a), first)
