"""Streaming (device/streaming.py): what the daemon computes while a person is still speaking is
exactly what the whole utterance gives (embedding, its MFCC matrix, VAD labels, stored decision),
and with per-frame normalisation only the end-aligned window is left for the end of speech."""

from __future__ import annotations

import functools
import json
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest

from device.audio import load_audio, save_wav
from device.config import Config, SessionConfig
from device.daemon import Result, run_daemon
from device.embedder import Embedder, EmbeddingStream
from device.enroll import Enroller
from device.recognizer import Recognizer
from device.sources import FileSource
from device.store import Store
from device.streaming import UtteranceStream
from device.vad import FRAME, Segmenter, frame_labels

REPO = Path(__file__).resolve().parents[2]
SHIPPED = REPO / "models" / "default"  # norm 'cmn', window 200 frames, hop 100
CLIPS = REPO / "device" / "demo_clips"
GAP = np.zeros(16000, np.float32)


@functools.lru_cache(maxsize=1)
def speech() -> np.ndarray:
    """~7.9 s of real speech from two demo test clips."""
    return np.concatenate([load_audio(CLIPS / "alan-test-1.flac"), load_audio(CLIPS / "lyubov-test-1.flac")])


@pytest.fixture(scope="module", params=["cmn", "none"])
def embedder(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Embedder:
    """The shipped model as shipped (cmn), and the same model in a bundle whose features say 'none'."""
    if request.param == "cmn":
        return Embedder(SHIPPED)
    root = tmp_path_factory.mktemp("norm-none")
    for name in ("model.tflite", "model.json", "cohort.npy"):
        shutil.copy(SHIPPED / name, root / name)
    meta = json.loads((root / "model.json").read_text())
    meta["features"]["norm"] = "none"
    (root / "model.json").write_text(json.dumps(meta))
    embedder = Embedder(root)
    assert embedder.features.norm == "none"
    return embedder


def count_windows(embedder: Embedder, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Rows that go through the model from now on, appended per call."""
    calls: list[int] = []
    real = embedder.embed_windows

    def counted(windows: np.ndarray) -> np.ndarray:
        calls.append(len(windows))
        return real(windows)

    monkeypatch.setattr(embedder, "embed_windows", counted)
    return calls


@pytest.mark.parametrize("seconds", [0.9, 2.0, 2.02, 3.33, 6.1])
def test_streamed_embedding_equals_whole_utterance(embedder: Embedder, seconds: float,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    audio = speech()[: int(seconds * 16000)]
    want = embedder.embed_audio(audio)
    stream = EmbeddingStream(embedder)
    for i in range(0, len(audio), FRAME):  # the segmenter's 30-ms frames
        stream.push(audio[i:i + FRAME])
    at_end = count_windows(embedder, monkeypatch)
    got = stream.finish()
    assert np.array_equal(got.vector, want.vector)
    assert np.array_equal(got.features, want.features) and got.features.dtype == np.float32
    assert (got.n_windows, got.padded, got.seconds) == (want.n_windows, want.padded, want.seconds)
    # Left for the end of speech: the end-aligned window with per-frame normalisation; every window
    # with the utterance mean (cmn), which only the end knows.
    assert sum(at_end) == (1 if embedder.features.norm == "none" else want.n_windows)


def test_uneven_pieces_give_the_same_embedding(embedder: Embedder) -> None:
    audio = speech()[: 3 * 16000 + 123]
    stream = EmbeddingStream(embedder)
    sizes = np.random.default_rng(0).integers(1, 4000, size=200)
    i = 0
    for size in sizes:
        stream.push(audio[i:i + size])
        i += int(size)
        if i >= len(audio):
            break
    assert np.array_equal(stream.finish().vector, embedder.embed(audio))


def test_segmenter_hands_each_utterance_to_its_stream(embedder: Embedder) -> None:
    cfg = Config(model=str(SHIPPED))
    clips = [load_audio(p) for p in sorted(CLIPS.glob("*-test-1.flac"))]
    audio = np.concatenate([GAP, clips[0], GAP, clips[1], GAP, clips[2]])  # the last one ends with the stream
    segmenter = Segmenter(cfg.vad, sink=lambda: UtteranceStream(embedder, cfg.vad.aggressiveness))
    utterances = []
    for i in range(0, len(audio), 1600):  # 100-ms blocks
        utterances += segmenter.feed_utterances(audio[i:i + 1600])
    utterances += segmenter.flush_utterances()
    plain = Segmenter(cfg.vad)
    assert [len(u.audio) for u in utterances] == [len(a) for a in plain.feed(audio) + plain.flush()]
    assert len(utterances) == 3
    for u in utterances:
        assert isinstance(u.sink, UtteranceStream) and u.sink.matches(u.audio)
        emb, frames, voiced = u.sink.finish()
        assert np.array_equal(emb.vector, embedder.embed(u.audio))
        want_frames, want_voiced = frame_labels(u.audio, cfg.vad.aggressiveness)
        assert np.array_equal(frames, want_frames) and np.array_equal(voiced, want_voiced)


def test_a_stream_is_used_only_for_exactly_the_audio_it_heard(embedder: Embedder) -> None:
    loud = speech()[:32000] * 4
    assert np.abs(loud).max() > 1  # the recognizer's input check clips this
    stream = UtteranceStream(embedder, 2)
    stream.push(loud)
    assert stream.matches(loud)
    assert not stream.matches(np.clip(loud, -1, 1)) and not stream.matches(loud[:-1])


def test_daemon_stores_the_whole_utterance_decision(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The real daemon loop (streamed) stores exactly the decisions the Recognizer gives the same
    VAD segments offline (whole-utterance path). Sessions end at the gaps between clips here, so
    each decision rests on its own utterance, as offline."""
    cfg = Config(model=str(SHIPPED), store=str(tmp_path / "store.db"), policy="eer", heartbeat_s=0.2,
                 session=SessionConfig(gap_s=0.5))
    embedder = Embedder(SHIPPED)
    with Store(cfg.store_path) as store:
        for who in ("alan", "lyubov"):
            enroller = Enroller.for_store(store, embedder, cfg.override(**{"enroll.consistency": -1e9}), who)
            for p in sorted(CLIPS.glob(f"{who}-enroll-*.flac")):
                enroller.add(load_audio(p), p.name)
            enroller.save(store)
    clips = [load_audio(p) for p in sorted(CLIPS.glob("*-test-*.flac"))]
    save_wav(tmp_path / "stream.wav", np.concatenate([GAP, *[np.concatenate([c, GAP]) for c in clips]]))
    audio = load_audio(tmp_path / "stream.wav")
    results: list[Result] = []
    with monkeypatch.context() as m:  # the daemon must take every utterance from its stream
        m.setattr(Embedder, "embed_audio", lambda *_: pytest.fail("whole-utterance embedding in the daemon"))
        counters = run_daemon(cfg, FileSource(tmp_path / "stream.wav", cfg.audio.block_ms), threading.Event(),
                              emit=results.append)
    assert counters.errors == 0
    segmenter = Segmenter(cfg.vad)
    segments = segmenter.feed(audio) + segmenter.flush()
    assert len(results) == len(segments) == len(clips)
    with Store(cfg.store_path) as store:
        recognizer = Recognizer(cfg, store)
        offline = [recognizer.recognize(s, attempt=False) for s in segments]
        events = store.recent_events(len(clips))[::-1]
        for got, want, event in zip(results, offline, events):
            assert got.session is not None and got.utterances == 1 and event.session == got.session
            heard = got.to_dict()
            assert 0 < heard.pop("heard_at") <= audio.size / 16000  # where in the stream it was decided
            assert {**heard, "session": None} == want.to_dict()
            assert got.decision.score == want.decision.score and np.array_equal(got.features, want.features)
            assert event.score == pytest.approx(want.decision.score, abs=1e-12)
        # a stream that heard something else (here: before clipping) is ignored, not trusted
        stream = UtteranceStream(recognizer.embedder, cfg.vad.aggressiveness)
        stream.push(segments[0] * 4)
        loud = recognizer.recognize(segments[0] * 4, attempt=False, streamed=stream)
        assert loud.to_dict() == recognizer.recognize(segments[0] * 4, attempt=False).to_dict()
