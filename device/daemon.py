"""Recognition and the listening daemon.

`Recognizer` turns one utterance into a decision (identify, or verify against one or more claimed
speakers) using the store's current profiles and threshold policy; the CLI's verify/identify and
the daemon share it. `run_daemon` is the loop: audio source -> VAD segmenter -> recognizer ->
event in the store + a line on stdout, with a heartbeat thread updating the status table. One bad
utterance is logged and skipped; a signal sets `stop` and the loop winds down cleanly.
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

import numpy as np

from device.audio import TARGET_SR, to_mono_16k
from device.bundle import Bundle
from device.config import Config
from device.embedder import Embedder
from device.lockout import Lockout
from device.scoring import Decision, Scorer, identify, verify
from device.sources import AudioSource
from device.store import Event, Store
from device.vad import Segmenter, frame_labels, snr_db, speech_seconds

log = logging.getLogger(__name__)


class RecognitionError(ValueError):
    """A recognition request that cannot be answered (unknown claim, nobody enrolled)."""


@dataclass
class Result:
    kind: str  # 'identify' | 'verify'
    decision: Decision
    claim: str | None
    seconds: float
    speech_seconds: float
    snr_db: float | None
    features: np.ndarray  # the utterance's MFCC matrix

    def to_dict(self) -> dict[str, Any]:
        d = self.decision
        return {"kind": self.kind, "decision": d.label, "accepted": d.accepted, "speaker": d.speaker,
                "claim": self.claim, "score": round(d.score, 4), "threshold": round(d.threshold, 4),
                "margin": round(d.margin, 4), "seconds": round(self.seconds, 2),
                "speech_seconds": round(self.speech_seconds, 2),
                "snr_db": None if self.snr_db is None else round(self.snr_db, 1)}

    def line(self) -> str:
        d = self.decision
        who = d.speaker if d.accepted else f"unknown (closest {d.speaker})" if self.kind == "identify" else d.speaker
        what = f"verify {self.claim}" if self.kind == "verify" else "identify"
        return (f"{time.strftime('%H:%M:%S')}  {what:<16} {d.label.upper():<6}  {who:<24} score {d.score:+.3f}  "
                f"threshold {d.threshold:+.3f}  margin {d.margin:+.3f}  speech {self.speech_seconds:.1f} s")

    def event(self) -> Event:
        d = self.decision
        return Event(self.kind, d.speaker, d.score, d.threshold, d.accepted, self.seconds, claim=self.claim,
                     snr_db=self.snr_db, mfcc=self.features)


class Recognizer:
    """One bundle + one store. Profiles and the threshold policy are re-read from the store when
    they change, so enrolling or changing the policy on the status page takes effect at once."""

    def __init__(self, cfg: Config, store: Store, policy: str | None = None) -> None:
        self.cfg, self.store = cfg, store
        self.bundle = Bundle.load(cfg.model)
        self.embedder = Embedder(self.bundle, threads=cfg.threads)
        self.scorer = Scorer.for_bundle(self.bundle)
        self.lockout = Lockout(store, cfg.lockout)
        self.policy_override = policy
        self.policy_in_use = self.policy  # the policy of the latest decision (readable from any thread)
        self.bundle.threshold(self.policy_in_use)  # fail now, not on the first utterance
        self._profiles: dict[str, np.ndarray] = {}
        self._version: tuple[int, float] | None = None

    @property
    def model_sha(self) -> str:
        return str(self.bundle.meta["sha256"])

    @property
    def policy(self) -> str:
        """CLI flag, else the store's 'policy' setting, else the config file."""
        return self.policy_override or str(self.store.get_setting("policy", self.cfg.policy))

    def profiles(self) -> dict[str, np.ndarray]:
        version = self.store.profiles_version()
        if version != self._version:
            self._profiles, self._version = self.store.profiles(self.model_sha), version
        return self._profiles

    def claimed_profiles(self, claims: Sequence[str]) -> dict[str, np.ndarray]:
        profiles = self.profiles()
        missing = [c for c in claims if c not in profiles]
        if missing:
            other = {s.name: s.model for s in self.store.list_speakers() if s.name in missing}
            hint = "; ".join(f"{n} is enrolled with model {m!r}, re-enroll with this one" for n, m in other.items())
            raise RecognitionError(f"not enrolled: {', '.join(missing)} (enrolled: {', '.join(profiles) or 'nobody'})"
                                   + (f"; {hint}" if hint else ""))
        return {c: profiles[c] for c in claims}

    def recognize(self, audio: np.ndarray, claims: Sequence[str] = (), label: str = "utterance") -> Result:
        """Identify among everyone enrolled, or verify against `claims` (the best-scoring claim)."""
        audio = to_mono_16k(audio, TARGET_SR, label)
        if len(audio) < self.cfg.vad.min_utterance_s * TARGET_SR:  # too little to judge: refuse, don't guess
            raise RecognitionError(f"{label}: {len(audio) / TARGET_SR:.2f} s of audio is too short; "
                                   f"at least {self.cfg.vad.min_utterance_s:.1f} s (vad.min_utterance_s) is needed")
        claims = self.lockout.allowed(claims)  # a locked-out claim is refused before it is scored
        candidates = self.claimed_profiles(claims) if claims else self.profiles()
        if not candidates:
            raise RecognitionError(f"nobody is enrolled with model {self.bundle.name!r} (python -m device enroll NAME)")
        self.policy_in_use = self.policy
        threshold = self.bundle.threshold(self.policy_in_use)
        emb = self.embedder.embed_audio(audio)
        if len(candidates) == 1 and claims:
            name, profile = next(iter(candidates.items()))
            decision = verify(self.scorer, profile, emb.vector, name, threshold)
        else:
            decision = identify(self.scorer, candidates, emb.vector, threshold)
        if claims:
            self.lockout.record(claims, decision.speaker if decision.accepted else None)
        frames, voiced = frame_labels(audio, self.cfg.vad.aggressiveness)
        kind = "verify" if claims else "identify"
        return Result(kind, decision, decision.speaker if claims else None, emb.seconds, speech_seconds(voiced),
                      snr_db(frames, voiced), emb.features)


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


def run_daemon(cfg: Config, source: AudioSource, stop: threading.Event, policy: str | None = None,
               emit: Callable[[Result], None] | None = None) -> Counters:
    """Listen until `stop` is set or the source ends; every decision becomes an event."""
    store = Store(cfg.store_path)
    store.set_setting("event_retention", cfg.event_retention)
    recognizer = Recognizer(cfg, store, policy)
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
                "last_decision": counters.last_decision}

    heartbeat = Heartbeat(cfg, status)
    heartbeat.start()
    segmenter = Segmenter(cfg.vad)
    log.info("listening on %s with %s (%s); %s", source.name, recognizer.bundle.name, runtime.name,
             f"verifying {', '.join(cfg.claimed)}" if cfg.claimed else "identifying")
    try:
        for block in source.blocks(stop):
            for utterance in segmenter.feed(block):
                _handle(recognizer, store, utterance, cfg.claimed, counters, emit)
        for utterance in segmenter.flush():
            _handle(recognizer, store, utterance, cfg.claimed, counters, emit)
    finally:
        heartbeat.done.set()
        heartbeat.join()
        try:
            store.heartbeat({**status(), "state": "stopped"})
        except sqlite3.Error as exc:  # e.g. the disk is full: the stop itself must still be clean
            log.warning("could not record the stop in the store: %s", exc)
        store.close()
    return counters


def _handle(recognizer: Recognizer, store: Store, utterance: np.ndarray, claims: Sequence[str], counters: Counters,
            emit: Callable[[Result], None] | None) -> None:
    counters.utterances += 1
    try:
        result = recognizer.recognize(utterance, claims, label=f"utterance {counters.utterances}")
    except Exception as exc:  # one bad utterance must never stop the daemon
        counters.errors += 1
        log.error("utterance %d skipped: %s", counters.utterances, exc, exc_info=not isinstance(exc, ValueError))
        return
    try:
        store.add_event(result.event())
    except sqlite3.Error as exc:  # a full or failing disk loses the record, not the decision
        counters.store_errors += 1
        log.error("utterance %d: decision not recorded in the store: %s", counters.utterances, exc)
    counters.last_decision = result.line()
    if emit is not None:
        emit(result)
