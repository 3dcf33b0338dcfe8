"""The benchmark harness (scripts/bench/smoke.sh) on the tiny bundle: JSON and markdown it writes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from device.audio import load_audio
from device.embedder import Embedder
from scripts.bench.device_side.speed import window_macs
from tests.helpers import REPO, run
from train.datasets import read_trials
from train.metrics import eer

CONDITIONS = ("clean", "noisy", "short")


def test_window_macs_by_hand() -> None:
    meta = {"window": {"frames": 100, "hop": 50},
            "model": {"n_ceps": 20, "conv_filters": [64, 128], "conv_kernels": [5, 3], "lstm_units": 32,
                      "embedding_dim": 32}}
    macs = window_macs(meta)
    assert macs["conv"] == 100 * 5 * 20 * 64 + 50 * 3 * 64 * 128  # pooling halves the frames
    assert macs["lstm"] == 25 * 4 * 32 * (128 + 32)
    assert macs["total"] == macs["conv"] + macs["lstm"] + 32 * 32
    meta["model"]["pooling"] = "stats"  # mean and std of the LSTM outputs feed the dense layer
    assert window_macs(meta)["dense"] == 2 * 32 * 32


def test_smoke_harness(tiny_bundle: Path, tiny_corpus: Path, tmp_path: Path) -> None:
    out = tmp_path / "bench"
    proc = run(["bash", REPO / "scripts/bench/smoke.sh", tiny_bundle, tiny_corpus, out], timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]

    acc = json.loads((out / "accuracy.json").read_text())
    assert acc["conditions"] == list(CONDITIONS)
    names = list(acc["systems"])
    assert names[0].startswith("project")
    assert any(n.startswith("MFCC") for n in names) and any(n.startswith("GMM-UBM") for n in names)
    for per_cond in acc["systems"].values():
        for c in CONDITIONS:
            assert (per_cond[c]["n_target"], per_cond[c]["n_nontarget"]) == (10, 10)
            assert 0 <= per_cond[c]["eer"] <= 100 and per_cond[c]["min_dcf_p01"] >= 0
    assert all((out / "plots" / f"det_{c}.png").stat().st_size > 0 for c in CONDITIONS)
    # The project's numbers are the trials': cosine of the device embeddings, EER by train.metrics.
    embedder = Embedder(tiny_bundle)
    for c in CONDITIONS:
        trials = read_trials(out / "trials" / f"trials_{c}.txt")
        vec = {p: embedder.embed(load_audio(tiny_corpus / p)) for t in trials for p in (t.enroll, t.test)}
        labels = np.array([t.label for t in trials])
        scores = np.array([float(vec[t.enroll] @ vec[t.test]) for t in trials])
        assert acc["systems"]["project (cosine)"][c]["eer"] == pytest.approx(eer(labels, scores)[0], abs=1e-3), c

    (speed_file,) = out.glob("speed_*.json")
    speed = json.loads(speed_file.read_text())
    assert speed["runtime"] == "ai_edge_litert" and speed["threads"] == 1 and speed["ms_per_3s_median"] > 0
    assert speed["pi"]["macs_per_window"]["total"] > 0 and speed["pi"]["pi4_rtf"] > speed["pi"]["pi5_rtf"] > 0

    fp = json.loads((out / "footprint.json").read_text())
    assert fp["bundles"][0]["model_bytes"] == (tiny_bundle / "model.tflite").stat().st_size
    assert 0 < fp["device"]["install_without_streamlit_bytes"] < fp["device"]["install_bytes"]
    assert "streamlit" in fp["device"]["streamlit_only"] and "numpy" not in fp["device"]["streamlit_only"]

    md = (out / "BENCHMARKS.md").read_text()
    for heading in ("## Headline", "## Accuracy", "## Speed", "## Raspberry Pi estimate", "## Footprint"):
        assert heading in md
    assert "![DET clean](plots/det_clean.png)" in md
    assert names[0] in md
