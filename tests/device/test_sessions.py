"""The daemon speaks sessions (device/session.py): the utterances of one person within the gap are one
decision re-taken from all their evidence and ONE event updated in place; a long silence or another
voice starts a new session, and the ended session's last decision is published again as final.

Real audio (the demo clips: RHVoice voices the shipped model never trained on) streamed through the
VAD, the shipped model, a real SQLite store and a real mosquitto. The shipped bundle carries no
same-speaker calibration yet, so a copy gets a same-speaker cosine of 0.5 (alan's two test clips
agree at 0.60, alan and victoria at -0.40)."""

from __future__ import annotations

import json
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from device.audio import load_audio
from device.config import Config
from device.daemon import run_daemon
from device.embedder import Embedder
from device.enroll import Enroller, enroll_samples
from device.recognizer import Recognizer, Result
from device.store import Store
from tests.device.broker import Broker, Listener
from tests.helpers import REPO, ListSource, vad_segments

CLIPS = REPO / "device" / "demo_clips"
SAME_SPEAKER = 0.5
GAP_S = 4.0
PAUSE = np.zeros(16000, np.float32)  # 1 s: within the gap
TOPIC = "speakerid/sesspi/decision"
ALAN = "speakerid/sesspi/presence/alan"


def clip(name: str) -> np.ndarray:
    return load_audio(CLIPS / f"{name}.flac")


@pytest.fixture(scope="module")
def household(tmp_path_factory: pytest.TempPathFactory) -> Config:
    """alan, lyubov and mikhail enrolled from the demo clips (victoria is a stranger), sessions ending after 4 s."""
    root = tmp_path_factory.mktemp("sessions")
    bundle = root / "bundle"
    shutil.copytree(REPO / "models" / "default", bundle)
    meta = json.loads((bundle / "model.json").read_text())
    meta["score_calibration"]["same_speaker"] = {"threshold": SAME_SPEAKER}
    (bundle / "model.json").write_text(json.dumps(meta))
    cfg = Config(model=str(bundle), store=str(root / "store.db"), policy="far1").override(**{"session.gap_s": GAP_S})
    embedder = Embedder(bundle)
    with Store(cfg.store_path) as store:
        for name in ("alan", "lyubov", "mikhail"):
            enroller = Enroller.for_store(store, embedder, cfg, name)
            enroll_samples(enroller, store, [(p.name, load_audio(p)) for p in sorted(CLIPS.glob(f"{name}-enroll-*"))])
    return cfg


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    b = Broker(tmp_path / "broker").start()
    yield b
    b.stop()


def listen(cfg: Config, broker: Broker, stream: np.ndarray) -> tuple[list[Result], list[dict], list[str]]:
    """Run the daemon on `stream`, publishing to `broker`: (its decisions, the messages on the decision
    topic, every decision and presence topic as published), in order."""
    cfg = cfg.override(**{"mqtt.host": "127.0.0.1", "mqtt.port": broker.port, "mqtt.device_id": "sesspi",
                          "mqtt.discovery": False})
    listener = Listener(broker.port, ["speakerid/sesspi/#"], client_id="t-sessions")
    results: list[Result] = []
    run_daemon(cfg, ListSource(stream), threading.Event(), emit=results.append)
    sessions = len({r.session for r in results})
    listener.wait(lambda: len(listener.on(TOPIC)) == len(results) + sessions, what="every decision and each final")
    messages = [json.loads(m.payload) for m in listener.on(TOPIC)]
    topics = [m.topic for m in listener.messages if m.topic == TOPIC or "/presence/" in m.topic]
    listener.close()
    return results, messages, topics


def new_events(cfg: Config, before: int) -> list:
    with Store(cfg.store_path, readonly=True) as store:
        return [e for e in store.recent_events(50) if e.id > before]


def newest_id(cfg: Config) -> int:
    with Store(cfg.store_path, readonly=True) as store:
        events = store.recent_events(1)
    return events[0].id if events else 0


def offline_session(cfg: Config, stream: np.ndarray) -> list[Result]:
    """The Recognizer's own decisions on those utterances as one session."""
    with Store(cfg.store_path) as store:
        recognizer = Recognizer(cfg, store)
        tracker = recognizer.session_tracker(None)
        return [recognizer.recognize(s, sessions=tracker, now=0.0, attempt=False)
                for s in vad_segments(cfg, stream)]


def test_one_person_talking_is_one_session_and_one_event(household: Config, broker: Broker) -> None:
    stream = np.concatenate([PAUSE, clip("alan-test-1"), PAUSE, clip("alan-test-2"), PAUSE])
    before = newest_id(household)
    results, messages, topics = listen(household, broker, stream)
    assert len(results) == 2 and results[0].session == results[1].session
    assert [r.utterances for r in results] == [1, 2]
    # the second decision is the Recognizer's own on both utterances fused, not on the second alone
    offline = offline_session(household, stream)
    assert [(r.decision.label, r.decision.speaker, r.utterances) for r in offline] == \
        [(r.decision.label, r.decision.speaker, r.utterances) for r in results]
    assert results[1].decision.score == pytest.approx(offline[1].decision.score, abs=1e-4)
    with Store(household.store_path) as store:
        alone = Recognizer(household, store).recognize(vad_segments(household, stream)[1], attempt=False)
    assert abs(alone.decision.score - results[1].decision.score) > 0.01
    events = new_events(household, before)  # one event, updated in place to the latest decision
    assert len(events) == 1
    event = events[0]
    assert (event.session, event.utterances, event.decision, event.speaker) == (
        results[1].session, 2, results[1].decision.label, results[1].decision.speaker)
    assert event.score == pytest.approx(results[1].decision.score, abs=1e-5)
    # two decisions as the session grew, then the last one again as final
    assert [(m["session"], m["utterances"], m["final"]) for m in messages] == [
        (results[0].session, 1, False), (results[0].session, 2, False), (results[0].session, 2, True)]
    assert messages[2]["decision"] == results[1].decision.label and messages[2]["score"] == messages[1]["score"]
    assert topics.count(ALAN) == sum(m["accepted"] for m in messages)  # the final's accept included


def test_silence_longer_than_the_gap_starts_a_new_session(household: Config, broker: Broker) -> None:
    silence = np.zeros(int(16000 * (GAP_S + 1)), np.float32)
    stream = np.concatenate([PAUSE, clip("alan-test-1"), silence, clip("alan-test-2"), PAUSE])
    before = newest_id(household)
    results, messages, _ = listen(household, broker, stream)
    assert len(results) == 2 and results[0].session != results[1].session
    assert [r.utterances for r in results] == [1, 1]
    assert [(e.session, e.utterances) for e in new_events(household, before)] == [
        (results[1].session, 1), (results[0].session, 1)]
    # the first session's final is published when the gap passes, before the next utterance's decision
    assert [(m["session"], m["final"]) for m in messages] == [
        (results[0].session, False), (results[0].session, True), (results[1].session, False), (results[1].session, True)]


def test_another_voice_splits_the_session(household: Config, broker: Broker) -> None:
    stream = np.concatenate([PAUSE, clip("alan-test-1"), PAUSE, clip("victoria-test-1"), PAUSE])
    before = newest_id(household)
    results, messages, _ = listen(household, broker, stream)
    assert len(results) == 2 and results[0].session != results[1].session
    assert [r.utterances for r in results] == [1, 1]
    assert results[1].decision.label != "accept"  # victoria is not enrolled; alan's evidence did not carry over
    assert len(new_events(household, before)) == 2
    assert [(m["session"], m["final"]) for m in messages] == [
        (results[0].session, False), (results[0].session, True), (results[1].session, False), (results[1].session, True)]


def test_unsure_names_nobody_then_more_speech_accepts_in_the_same_event(household: Config, broker: Broker) -> None:
    cfg = household.override(policy="far0.5")
    stream = np.concatenate([PAUSE, clip("alan-test-2")[:32000], PAUSE, clip("alan-test-1"), PAUSE])
    with Store(cfg.store_path) as store:  # the first 2 s of alan's second clip score just below far0.5's threshold
        alone = Recognizer(cfg, store).recognize(vad_segments(cfg, stream)[0], attempt=False).decision
    assert (alone.label, alone.speaker) == ("unsure", "alan")
    before = newest_id(cfg)
    results, messages, topics = listen(cfg, broker, stream)
    assert [(r.decision.label, r.utterances) for r in results] == [("unsure", 1), ("accept", 2)]
    # unsure: not accepted, names nobody (not even the closest), and presence stays off until the accept
    assert [(m["decision"], m["accepted"], m["speaker"], m["utterances"], m["final"]) for m in messages] == [
        ("unsure", False, "unknown", 1, False), ("accept", True, "alan", 2, False), ("accept", True, "alan", 2, True)]
    assert messages[0]["score"] < messages[0]["threshold"] <= messages[1]["score"]
    assert topics == [TOPIC, TOPIC, ALAN, TOPIC, ALAN]
    events = new_events(cfg, before)  # the unsure that became an accept is one event, not two
    assert [(e.decision, e.accepted, e.speaker, e.utterances) for e in events] == [("accept", True, "alan", 2)]
