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
from device.daemon import Recognizer
from device.embedder import Embedder
from device.enroll import Enroller
from device.store import Store
from tests.conftest import REPO


def corpus_speakers(root: Path) -> dict[str, list[Path]]:
    """speaker -> sorted utterance files (directories like _noisy/ are variants, not speakers)."""
    return {d.name: sorted(d.glob("*.wav")) for d in sorted(root.iterdir())
            if d.is_dir() and not d.name.startswith("_") and any(d.glob("*.wav"))}


@pytest.fixture(scope="module")
def embedder(tiny_bundle: Path) -> Embedder:
    return Embedder(tiny_bundle)


def cfg_for(bundle: Path, tmp: Path, **enroll: float) -> Config:
    cfg = Config(model=str(bundle), store=str(tmp / "store.db"))
    return cfg.override(**{f"enroll.{k}": v for k, v in enroll.items()})


def test_enroll_then_verify_and_identify_heldout(tiny_bundle: Path, tiny_corpus: Path, embedder: Embedder,
                                                 tmp_path: Path) -> None:
    speakers = corpus_speakers(tiny_corpus)
    enrolled, unknown = list(speakers)[:4], list(speakers)[4:]
    cfg = cfg_for(tiny_bundle, tmp_path, consistency=-100.0)  # consistency is tested separately
    with Store(cfg.store_path) as store:
        for name in enrolled:
            enroller = Enroller.for_store(store, embedder, cfg, name)
            feedback = [enroller.add(load_audio(p), p.name) for p in speakers[name][:-2]]
            assert all(f.accepted for f in feedback), [f.message for f in feedback]
            enroller.save(store)
        rec = Recognizer(cfg, store, policy="eer")
        genuine = [rec.recognize(load_audio(p), [name]).decision.accepted for name in enrolled for p in speakers[name][-2:]]
        impostor = [rec.recognize(load_audio(speakers[other][-1]), [name]).decision.accepted
                    for name in enrolled for other in enrolled if other != name]
        ident = [rec.recognize(load_audio(p)).decision for name in enrolled for p in speakers[name][-2:]]
        unknowns = [rec.recognize(load_audio(p)).decision.accepted for name in unknown for p in speakers[name][-2:]]
    assert np.mean(genuine) >= 0.75, genuine
    assert np.mean(impostor) <= 0.25, impostor
    assert np.mean([d.accepted and d.speaker == name for d, name in zip(ident, np.repeat(enrolled, 2))]) >= 0.6
    assert np.mean(unknowns) <= 0.34, unknowns


def test_sample_feedback(tiny_bundle: Path, tiny_corpus: Path, embedder: Embedder, tmp_path: Path) -> None:
    speakers = corpus_speakers(tiny_corpus)
    first, second = list(speakers)[:2]
    clip = load_audio(speakers[first][0])
    enroller = Enroller(embedder, cfg_for(tiny_bundle, tmp_path), first)
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
    others = [enroller.add(load_audio(p), p.name) for p in speakers[second][:3]]
    assert any("inconsistent" in p for f in others for p in f.problems), [f.message for f in others]


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
