"""The listening daemon.

`run_daemon` is the loop: audio source -> VAD segmenter -> recognizer (device/recognizer.py) ->
event in the store + a line on stdout, with a heartbeat thread updating the status table. While a
person speaks, the segmenter feeds the utterance to an UtteranceStream (device/streaming.py), so
at the end of speech little is left to compute. One bad utterance is logged and skipped; a signal
sets `stop` and the loop winds down cleanly.

Sessions (device/session.py): every utterance joins the open session unless it follows more than
`session.gap_s` of silence or another person speaks, and the decision is taken again from all of the
session's utterances; the session's one event in the store is updated each time. When a session ends
(the gap passes, checked on every audio block, a speaker change, or the end of the audio) its latest
decision is published once more with `"final": true`, so automations can wait for the settled answer.
The sessions' clock counts the seconds heard outside speech, so the gap is exactly the silence
between two utterances however long people speak, and a file streamed faster than real time behaves
as the same audio heard live.

In verify mode (`claimed` speakers configured) every utterance is checked against the claims, but
none of them counts toward the verification lockout: the microphone hears televisions and visitors,
not claims (docs/RELIABILITY.md, "Lockout counts claims, not sounds").
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from device.audio import TARGET_SR
from device.config import Config
from device.publish import Publisher, enrolled_names
from device.recognizer import Recognizer, Result
from device.session import SessionTracker
from device.sources import AudioSource
from device.store import Store
from device.streaming import UtteranceStream
from device.vad import Segmenter, Utterance

log = logging.getLogger(__name__)


class Heartbeat(threading.Thread):
    """Refreshes the status table every few seconds from its own store connection."""

    def __init__(self, cfg: Config, values: Callable[[], dict[str, Any]]) -> None:
        super().__init__(name="heartbeat", daemon=True)
        self.cfg, self.values, self.done = cfg, values, threading.Event()

    def run(self) -> None:
        with Store(self.cfg.store_path) as store:
            while not self.done.wait(self.cfg.heartbeat_s):
                try:
                    store.heartbeat(self.values())
                except Exception as exc:  # a busy disk must not stop the daemon
                    log.warning("heartbeat failed: %s", exc)


@dataclass
class Counters:
    utterances: int = 0
    errors: int = 0
    store_errors: int = 0  # decisions made but not recorded (e.g. disk full)
    last_decision: str = ""
    heard_s: float = 0.0  # audio read from the source so far: where in it each decision was made


class Conversation:
    """The open session: its tracker, its latest decision and the clock of silence heard."""

    def __init__(self, tracker: SessionTracker, publisher: Publisher) -> None:
        self.tracker, self.publisher = tracker, publisher
        self.latest: Result | None = None
        self.quiet_s = 0.0  # seconds of audio heard outside speech: the sessions' clock

    def heard(self, samples: int, in_speech: bool) -> None:
        """One audio block: outside speech it advances the clock and may end the session on time."""
        if not in_speech:
            self.quiet_s += samples / TARGET_SR
            if self.tracker.expired(self.quiet_s):
                self.end()

    def decided(self, result: Result) -> None:
        """A decision; when it started a new session (another speaker), the previous one is final."""
        if self.latest is not None and result.session != self.latest.session:
            self._final(self.latest)
        self.latest = result

    def end(self) -> None:
        """Close the open session and publish its final decision."""
        self.tracker.close()
        if self.latest is not None:
            self._final(self.latest)
        self.latest = None

    def _final(self, result: Result) -> None:
        self.publisher.decision({**result.to_dict(), "final": True})


def run_daemon(cfg: Config, source: AudioSource, stop: threading.Event, policy: str | None = None,
               emit: Callable[[Result], None] | None = None) -> Counters:
    """Listen until `stop` is set or the source ends; every decision becomes an event."""
    store = Store(cfg.store_path)
    store.set_setting("event_retention", cfg.event_retention)
    recognizer = Recognizer(cfg, store, policy)
    # MQTT / webhook (device/publish.py): queued off the audio path, a no-op when not configured
    publisher = Publisher.from_config(cfg, daemon=True, speakers=enrolled_names(cfg.store_path),
                                      model=recognizer.bundle.name)
    runtime = recognizer.embedder.runtime
    store.set_status({"pid": os.getpid(), "started": time.time(), "state": "running", "model": recognizer.bundle.name,
                      "model_sha": recognizer.model_sha, "quantization": recognizer.bundle.quantization,
                      "runtime": f"{runtime.name} {runtime.version}", "source": source.name,
                      "mode": f"verify {', '.join(cfg.claimed)}" if cfg.claimed else "identify"})
    counters = Counters()

    def status() -> dict[str, Any]:
        stats = getattr(source, "stats", None)
        return {"utterances": counters.utterances, "errors": counters.errors, "policy": recognizer.policy_in_use,
                "audio_device": getattr(stats, "device", source.name),
                "audio_errors": getattr(stats, "errors", 0), "store_errors": counters.store_errors,
                "last_decision": counters.last_decision, "integrations": publisher.status()}

    conversation = Conversation(recognizer.session_tracker(cfg.session.gap_s), publisher)

    def decide(utterance: Utterance) -> None:
        result = _handle(recognizer, store, utterance, cfg.claimed, counters, conversation)
        if result is None:
            return
        result.heard_at = round(counters.heard_s, 2)
        conversation.decided(result)
        publisher.decision({**result.to_dict(), "final": False})
        if emit is not None:
            emit(result)

    heartbeat = Heartbeat(cfg, status)
    heartbeat.start()
    if cfg.household.key_file:  # paho and cryptography only where profiles are shared
        from device.household import SyncLoop

        SyncLoop(cfg, recognizer.model_sha, heartbeat.done).start()
    segmenter = Segmenter(cfg.vad, sink=lambda: UtteranceStream(recognizer.embedder, cfg.vad.aggressiveness))
    log.info("listening on %s with %s (%s); %s", source.name, recognizer.bundle.name, runtime.name,
             f"verifying {', '.join(cfg.claimed)}" if cfg.claimed else "identifying")
    try:
        for block in source.blocks(stop):
            counters.heard_s += len(block) / TARGET_SR
            for utterance in segmenter.feed_utterances(block):
                decide(utterance)
            conversation.heard(len(block), segmenter.in_speech)
        for utterance in segmenter.flush_utterances():
            decide(utterance)
        conversation.end()
    finally:
        heartbeat.done.set()
        heartbeat.join()
        publisher.close()
        try:
            store.heartbeat({**status(), "state": "stopped"})
        except sqlite3.Error as exc:  # e.g. the disk is full: the stop itself must still be clean
            log.warning("could not record the stop in the store: %s", exc)
        store.close()
    return counters


def _handle(recognizer: Recognizer, store: Store, utterance: Utterance, claims: Sequence[str], counters: Counters,
            conversation: Conversation) -> Result | None:
    """Decide one utterance within its session and record it; None when it could not be judged."""
    counters.utterances += 1
    streamed = utterance.sink if isinstance(utterance.sink, UtteranceStream) else None
    try:
        result = recognizer.recognize(utterance.audio, claims, label=f"utterance {counters.utterances}", attempt=False,
                                      streamed=streamed, sessions=conversation.tracker, now=conversation.quiet_s)
    except Exception as exc:  # one bad utterance must never stop the daemon
        counters.errors += 1
        log.error("utterance %d skipped: %s", counters.utterances, exc, exc_info=not isinstance(exc, ValueError))
        return None
    try:
        store.add_event(result.event())
    except sqlite3.Error as exc:  # a full or failing disk loses the record, not the decision
        counters.store_errors += 1
        log.error("utterance %d: decision not recorded in the store: %s", counters.utterances, exc)
    counters.last_decision = result.line()
    return result
