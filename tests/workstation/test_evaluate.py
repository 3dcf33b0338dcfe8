"""The evaluate CLI contract on a tiny bundle and a tiny run folder."""

from __future__ import annotations

import json

import numpy as np
import pytest

from device.audio import load_audio, save_wav
from device.embedder import Embedder
from tests.helpers import TRAIN_PY, run
from train.datasets import read_trials
from train.metrics import eer

KEYS = {"eer", "min_dcf_p01", "min_dcf_p05", "threshold_eer", "n_target", "n_nontarget"}


def test_bundle_with_cohort_reports_asnorm_and_plots(tiny_bundle, tiny_corpus, tmp_path):
    out = tmp_path / "m.json"
    proc = run([TRAIN_PY, "-m", "train.evaluate", "--model", tiny_bundle, "--trials", tiny_corpus / "trials_clean.txt",
                "--audio-root", tiny_corpus, "--json", out, "--plots", tmp_path / "plots"])
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(out.read_text())
    assert KEYS <= set(result) and KEYS <= set(result["asnorm"])
    # The reported numbers are the trial list's: cosine of the device embeddings, EER by train.metrics
    # (itself checked by hand in test_metrics.py).
    trials = read_trials(tiny_corpus / "trials_clean.txt")
    embedder = Embedder(tiny_bundle)
    vec = {p: embedder.embed(load_audio(tiny_corpus / p)) for t in trials for p in (t.enroll, t.test)}
    labels = np.array([t.label for t in trials])
    scores = np.array([float(vec[t.enroll] @ vec[t.test]) for t in trials])
    assert (result["n_target"], result["n_nontarget"]) == (int(labels.sum()), int((labels == 0).sum()))
    assert result["eer"] == pytest.approx(eer(labels, scores)[0], abs=1e-3)
    for png in ("det.png", "scores.png"):
        assert (tmp_path / "plots" / png).read_bytes()[:4] == b"\x89PNG"


def test_run_folder_and_short_utterances_are_padded_not_fatal(tiny_run, tiny_corpus, tmp_path):
    wavs = sorted(tiny_corpus.glob("*/*.wav"))
    spk = {}
    for w in wavs:
        spk.setdefault(w.parent.name, []).append(w)
    a, b = list(spk.values())[:2]
    (tmp_path / "s").mkdir()
    for w in (a[0], a[1], b[0]):
        save_wav(tmp_path / "s" / f"{w.parent.name}-{w.name}", load_audio(w)[:4000])  # 0.25 s
    names = sorted(p.name for p in (tmp_path / "s").iterdir())
    same = [n for n in names if n.startswith(a[0].parent.name)]
    other = [n for n in names if not n.startswith(a[0].parent.name)]
    trials = tmp_path / "t.txt"
    trials.write_text(f"1 s/{same[0]} s/{same[1]}\n0 s/{same[0]} s/{other[0]}\n")
    proc = run([TRAIN_PY, "-m", "train.evaluate", "--model", tiny_run, "--trials", trials, "--audio-root", tmp_path])
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout[proc.stdout.index("{"):])
    assert result["n_padded"] == 3 and "asnorm" not in result
    assert "padded by repetition" in proc.stderr
    assert np.isfinite(result["eer"])
