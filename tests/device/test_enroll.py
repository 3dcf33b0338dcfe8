"""Enrollment feedback and profiles, end to end with the tiny bundle and corpus; crash safety."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from device.audio import load_audio
from device.config import Config
from device.embedder import Embedder
from device.enroll import Enroller
from device.recognizer import Recognizer
from device.store import Store
from tests.helpers import REPO, corpus_speakers


@pytest.fixture(scope="module")
def embedder(tiny_bundle: Path) -> Embedder:
    return Embedder(tiny_bundle)


def cfg_for(bundle: Path, tmp: Path, **enroll: float) -> Config:
    cfg = Config(model=str(bundle), store=str(tmp / "store.db"))
    return cfg.override(**{f"enroll.{k}": v for k, v in enroll.items()})


def enroll_and_score(bundle: Path, corpus: Path, embedder: Embedder, tmp: Path, policy: str) -> dict[str, list]:
    """Enroll 4 speakers (every other one, so sources mix) from all but their last 2 utterances;
    decide on the held-out ones, on the other enrolled speakers (impostors) and on the remaining,
    never-enrolled speakers."""
    speakers = corpus_speakers(corpus)
    enrolled = list(speakers)[::2][:4]
    unknown = [name for name in speakers if name not in enrolled]
    cfg = cfg_for(bundle, tmp, consistency=-100.0)  # consistency is tested separately
    with Store(cfg.store_path) as store:
        for name in enrolled:
            enroller = Enroller.for_store(store, embedder, cfg, name)
            feedback = [enroller.add(load_audio(p), p.name) for p in speakers[name][:-2]]
            assert all(f.accepted for f in feedback), [f.message for f in feedback]
            enroller.save(store)
        rec = Recognizer(cfg, store, policy=policy)
        heldout = [(name, load_audio(p)) for name in enrolled for p in speakers[name][-2:]]
        return {
            "genuine": [rec.recognize(a, [name]).decision for name, a in heldout],
            "impostor": [rec.recognize(load_audio(speakers[other][-1]), [name]).decision
                         for name in enrolled for other in enrolled if other != name],
            "identify": [(name, rec.recognize(a).decision) for name, a in heldout],
            "unknown": [rec.recognize(load_audio(p)).decision for name in unknown for p in speakers[name][-2:]],
        }


def test_enroll_and_recognize_pipeline(tiny_bundle: Path, tiny_corpus: Path, embedder: Embedder, tmp_path: Path) -> None:
    """The tiny bundle is trained for a few steps only: check ranking, not calibrated decisions."""
    r = enroll_and_score(tiny_bundle, tiny_corpus, embedder, tmp_path, "eer")
    assert np.mean([d.score for d in r["genuine"]]) > np.mean([d.score for d in r["impostor"]])
    assert np.mean([d.speaker == name for name, d in r["identify"]]) > 0.25  # chance


# What models/default decides on the small development set (4 people enrolled from 3 clean recordings,
# 2 held-out attempts each; 12 impostor claims; 8 attempts by the 4 others), counted when the model
# shipped. Deterministic: a different count means the model or the decision path changed. After a
# retrain, re-measure (tests/device/test_enroll.py's enroll_and_score on build/test-assets/dev) and
# key the new counts by the new model's sha256.
SHIPPED_COUNTS = {
    "63a2f0c13ec25ef84063e8816f22c98374cc71bf210c5458a53b2da62890af0e": {
        "far1": {"genuine": 6, "identify": 5, "impostor": 0, "unknown": 0},
        "eer": {"genuine": 7, "identify": 7, "impostor": 1, "unknown": 2},
    },
}


def test_accept_reject_with_the_shipped_model(small_dev: Path, tmp_path: Path) -> None:
    """Calibrated decisions on held-out utterances need a trained model: models/default, on people
    it never trained on (the small development set: RHVoice and KLettres people)."""
    bundle = REPO / "models" / "default"
    embedder = Embedder(bundle)
    sha = embedder.bundle.meta["sha256"]
    assert sha in SHIPPED_COUNTS, f"models/default changed ({sha}): re-measure SHIPPED_COUNTS"
    for policy, want in SHIPPED_COUNTS[sha].items():
        r = enroll_and_score(bundle, small_dev, embedder, tmp_path / policy, policy)
        counts = {"genuine": sum(d.accepted for d in r["genuine"]),
                  "identify": sum(d.accepted and d.speaker == name for name, d in r["identify"]),
                  "impostor": sum(d.accepted for d in r["impostor"]), "unknown": sum(d.accepted for d in r["unknown"])}
        assert counts == want, (policy, counts)
    # far1 keeps its promise to the household here: no impostor and no stranger accepted
    assert SHIPPED_COUNTS[sha]["far1"]["impostor"] == SHIPPED_COUNTS[sha]["far1"]["unknown"] == 0


def test_sample_feedback(tiny_bundle: Path, tiny_corpus: Path, embedder: Embedder, tmp_path: Path) -> None:
    speakers = corpus_speakers(tiny_corpus)
    first, second = list(speakers)[:2]
    clip = load_audio(speakers[first][0])
    # the tiny model's calibrated consistency threshold is out of reach; the mechanism is tested below
    enroller = Enroller(embedder, cfg_for(tiny_bundle, tmp_path, consistency=-100.0), first)
    assert enroller.add(np.zeros(32000, np.float32), "silence").problems == ["no voice found"]
    short = enroller.add(clip[:9000], "short")
    assert any(p.startswith("too short") for p in short.problems)
    clipped = enroller.add(np.clip(clip * 50, -1, 1), "loud")
    assert any(p.startswith("clipped") for p in clipped.problems)
    noisy = clip + np.random.default_rng(0).normal(0, 0.3 * np.abs(clip).max(), len(clip)).astype(np.float32)
    assert any(p.startswith("too noisy") for p in enroller.add(noisy, "noisy").problems)
    assert enroller.samples == [] and enroller.progress == 0
    for p in speakers[first][:3]:
        assert enroller.add(load_audio(p), p.name).accepted
    assert 0 < enroller.progress <= 1
    enroller.consistency = np.inf  # the tiny model cannot tell voices apart reliably; test the mechanism
    other = enroller.add(load_audio(speakers[second][0]), "other")
    assert other.score is not None and any(p.startswith("inconsistent with the samples so far") for p in other.problems)


def test_reenroll_adds_and_replace_starts_over(tiny_bundle: Path, tiny_corpus: Path, embedder: Embedder,
                                               tmp_path: Path) -> None:
    files = corpus_speakers(tiny_corpus)[list(corpus_speakers(tiny_corpus))[0]]
    cfg = cfg_for(tiny_bundle, tmp_path, consistency=-100.0)
    with Store(cfg.store_path) as store:
        for replace, n, expected in ((False, 2, 2), (False, 1, 3), (True, 1, 1)):
            enroller = Enroller.for_store(store, embedder, cfg, "ann", replace=replace)
            for p in files[:n]:
                enroller.add(load_audio(p), p.name, keep_audio=True)
            speaker = enroller.save(store)
            assert speaker.n_samples == expected == len(store.samples("ann"))
        assert store.samples("ann")[0].audio[:4] == b"RIFF"


HAMMER = """
import sys, numpy as np
from device.store import Sample, Speaker, Store
store = Store(sys.argv[1])
print("ready", flush=True)
g = 0
while True:
    g += 1
    vec = np.full(64, g, np.float32)
    n = 20 + g % 30
    samples = [Sample(vec, float(g), 1.0, 30.0, [], audio=b"x" * 200_000) for _ in range(n)]
    store.save_speaker(Speaker("ann", "tiny", "sha", vec, n, float(g), 1.0), samples, replace=True)
"""


def test_store_survives_kill_9_mid_enrollment(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    generations = []
    for delay in (0.3, 0.7, 1.1):
        proc = subprocess.Popen([sys.executable, "-c", HAMMER, str(path)], cwd=REPO, stdout=subprocess.PIPE, text=True)
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        with Store(path) as store:
            speaker = store.get_speaker("ann")
            if speaker is None:
                continue
            generations.append(speaker.speech_seconds)
            samples = store.samples("ann")
            assert len(samples) == speaker.n_samples
            assert {s.seconds for s in samples} == {speaker.speech_seconds} == {float(speaker.embedding[0])}
            assert store._db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert generations, "the writer never committed a profile before being killed"
