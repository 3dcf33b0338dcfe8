"""Recognition: one utterance -> one decision, shared by the daemon, the CLI and the status page.

`Recognizer` identifies among everyone enrolled, or verifies against one or more claimed speakers,
with the store's current profiles and threshold policy, and applies the verification lockout
(device/lockout.py). Whether a rejected verification counts toward that lockout is the caller's
statement (`attempt`): a claim somebody made on purpose (`python -m device verify --claim`, the
page's Try-it by an admin) counts; whatever the daemon's microphone happens to hear does not, or a
television could lock the owner out (docs/RELIABILITY.md, "Lockout counts claims, not sounds").
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from device.audio import TARGET_SR, to_mono_16k
from device.bundle import Bundle
from device.config import Config
from device.embedder import Embedder
from device.lockout import Lockout, locked_speakers
from device.refresh import ProfileRefresher, RefreshOutcome, refresh_threshold
from device.room import RoomEstimate, centred
from device.scoring import Decision, Scorer, identify, verify
from device.session import Session, SessionTracker
from device.store import Event, Store
from device.streaming import UtteranceStream
from device.vad import frame_labels, snr_db, speech_seconds


class RecognitionError(ValueError):
    """A recognition request that cannot be answered (unknown claim, nobody enrolled)."""


@dataclass
class Result:
    kind: str  # 'identify' | 'verify'
    decision: Decision
    claim: str | None
    seconds: float  # this utterance's audio
    speech_seconds: float  # the speech the decision rests on (a session's: all of its utterances')
    snr_db: float | None
    features: np.ndarray  # the utterance's MFCC matrix
    attempt: bool = True  # counted toward the claim's lockout (see the module docstring)
    utterances: int = 1  # utterances of the session the decision rests on
    session: str | None = None  # the session's id (None: a decision on this utterance alone)
    refresh: RefreshOutcome | None = None  # what an accept did to the speaker's profile ([refresh])
    heard_at: float | None = None  # the daemon: seconds into its audio source when the utterance was decided

    def to_dict(self) -> dict[str, Any]:
        d = self.decision
        return {"kind": self.kind, "decision": d.label, "accepted": d.accepted, "speaker": d.speaker,
                "claim": self.claim, "score": round(d.score, 4), "threshold": round(d.threshold, 4),
                "unsure_below": None if d.unsure_below is None else round(d.unsure_below, 4),
                "margin": round(d.margin, 4), "utterances": self.utterances, "session": self.session,
                "seconds": round(self.seconds, 2), "speech_seconds": round(self.speech_seconds, 2),
                "snr_db": None if self.snr_db is None else round(self.snr_db, 1),
                **({} if self.heard_at is None else {"heard_at": self.heard_at})}

    def line(self) -> str:
        d = self.decision
        closest = f"unknown (closest {d.speaker})" if self.kind == "identify" else d.speaker
        who = d.speaker if d.accepted else closest
        what = f"verify {self.claim}" if self.kind == "verify" else "identify"
        evidence = f"  {self.utterances} utterances" if self.utterances > 1 else ""
        return (f"{time.strftime('%H:%M:%S')}  {what:<16} {d.label.upper():<6}  {who:<24} score {d.score:+.3f}  "
                f"threshold {d.threshold:+.3f}  margin {d.margin:+.3f}  speech {self.speech_seconds:.1f} s{evidence}")

    def event(self) -> Event:
        d = self.decision
        return Event(self.kind, d.speaker, d.score, d.threshold, d.accepted, self.seconds, claim=self.claim,
                     snr_db=self.snr_db, mfcc=self.features, session=self.session, utterances=self.utterances,
                     decision=d.label)


class Recognizer:
    """One bundle + one store. Profiles and the threshold policy are re-read from the store when
    they change, so enrolling or changing the policy on the status page takes effect at once."""

    def __init__(self, cfg: Config, store: Store, policy: str | None = None, bundle: Bundle | None = None) -> None:
        self.cfg, self.store = cfg, store
        self.bundle = bundle if bundle is not None else Bundle.load(cfg.model)
        self.embedder = Embedder(self.bundle, threads=cfg.threads)
        self.scorer = Scorer.for_bundle(self.bundle)
        self.lockout = Lockout(store, cfg.lockout)
        self.refresher = ProfileRefresher(store, cfg.refresh, str(self.bundle.meta["sha256"]))
        self.room = self._room_estimate() if cfg.room.enabled and self.bundle.room is not None else None
        self.policy_override = policy
        self.policy_in_use = self.policy  # the policy of the latest decision (readable from any thread)
        self.bundle.threshold(self.policy_in_use)  # fail now, not on the first utterance
        self._profiles: dict[str, np.ndarray] = {}
        self._version: tuple[int, float] | None = None

    @property
    def model_sha(self) -> str:
        return str(self.bundle.meta["sha256"])

    @property
    def _room_key(self) -> str:
        return f"room:{self.model_sha[:16]}"

    def _room_estimate(self) -> RoomEstimate:
        """This device's estimate of its room for this bundle, continued from the store."""
        calibration, cohort = self.bundle.room, self.bundle.cohort
        cohort_mean = np.mean(cohort, axis=0) if cohort is not None else np.zeros(self.bundle.embedding_dim, np.float32)
        return RoomEstimate.restore(cohort_mean, calibration.blend, calibration.prior_utterances,
                                    self.store.get_setting(self._room_key))

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

    def recognize(self, audio: np.ndarray, claims: Sequence[str] = (), label: str = "utterance",
                  attempt: bool = True, streamed: UtteranceStream | None = None,
                  sessions: SessionTracker | None = None, now: float | None = None, learn: bool = True) -> Result:
        """Identify among everyone enrolled, or verify against `claims` (the best-scoring claim).

        A claim in its lockout cool-down is refused (LockedOut) before it is scored, whoever asks.
        With `attempt` (the default: a deliberate claim) a rejection counts toward the claimed
        speakers' lockout and an accept clears the accepted speaker's failures; without it (the
        daemon's verify mode, an anonymous visitor of the page) the lockout counters are not touched.
        `streamed` is the daemon's stream of this utterance (device/streaming.py): when it received
        exactly `audio`, its embedding and VAD labels (the same numbers) are taken instead of recomputed.
        With `sessions` the utterance joins (or starts) a session and the decision rests on all of
        that session's utterances, at the thresholds calibrated for that much evidence. With `learn`
        (not for uploaded files: they are not what the device hears) the utterance joins the room
        estimate when `[room]` is on and an accept may refresh the speaker's profile when `[refresh]` is on.
        """
        audio = to_mono_16k(audio, TARGET_SR, label)
        if len(audio) < self.cfg.vad.min_utterance_s * TARGET_SR:  # too little to judge: refuse, don't guess
            raise RecognitionError(f"{label}: {len(audio) / TARGET_SR:.2f} s of audio is too short; "
                                   f"at least {self.cfg.vad.min_utterance_s:.1f} s (vad.min_utterance_s) is needed")
        claims = self.lockout.allowed(claims)  # a locked-out claim is refused before it is scored
        candidates = self.claimed_profiles(claims) if claims else self.profiles()
        if not candidates:
            raise RecognitionError(f"nobody is enrolled with model {self.bundle.name!r} (python -m device enroll NAME)")
        if streamed is not None and streamed.matches(audio):
            emb, frames, voiced = streamed.finish()
        else:
            emb = self.embedder.embed_audio(audio)
            frames, voiced = frame_labels(audio, self.cfg.vad.aggressiveness)
        speech = speech_seconds(voiced)
        if learn and self.room is not None:
            self.room.hear(emb.vector)
            self.store.set_setting(self._room_key, self.room.to_dict())
        decision, session = self.judge(candidates, emb.vector, speech, bool(claims), sessions, now)
        utterances, speech = (session.utterances, session.speech_seconds) if session else (1, speech)
        if claims and attempt:
            self.lockout.record(claims, decision.speaker if decision.accepted else None)
        learning = learn and decision.accepted and self.cfg.refresh.enabled
        refresh = self.refresh(decision, emb.vector, len(candidates), utterances) if learning else None
        kind = "verify" if claims else "identify"
        return Result(kind, decision, decision.speaker if claims else None, emb.seconds, speech,
                      snr_db(frames, voiced), emb.features, attempt=bool(claims) and attempt,
                      utterances=utterances, session=session.id if session else None, refresh=refresh)

    def judge(self, candidates: dict[str, np.ndarray], vector: np.ndarray, speech: float, verifying: bool,
              sessions: SessionTracker | None = None, now: float | None = None) -> tuple[Decision, Session | None]:
        """The decision on one utterance's embedding: alone, or with `sessions` on all the evidence
        of the session it joins (or starts); returns the decision and that session."""
        if sessions is None:
            return self.decide(candidates, vector, 1, verifying=verifying), None
        if self._ends_session(sessions, candidates, vector, verifying):
            sessions.close()
        session, _ = sessions.add(vector, speech, time.time() if now is None else now)
        # a session's first utterance is decided exactly as it would be alone
        evidence = session.evidence() if session.utterances > 1 else vector
        decision = self.decide(candidates, evidence, session.utterances, verifying=verifying)
        session.speaker, session.label = decision.speaker, decision.label
        return decision, session

    def _ends_session(self, sessions: SessionTracker, candidates: dict[str, np.ndarray], vector: np.ndarray,
                      verifying: bool) -> bool:
        """Whether this utterance, judged alone, says that the person the open session points to
        stopped talking: it is accepted as another enrolled person; or the session so far is a reject
        and this utterance alone is not; or against the session's person it scores below what a
        stranger reaches with chance `[session] join_far`. The same-speaker cosine lets changes
        between similar voices through, and without the last two tests a stranger who speaks right
        before or after someone enrolled would share that person's session."""
        current = sessions.current
        if current is None or current.speaker is None or not self.cfg.session.split_on_change:
            return False
        alone = self.decide(candidates, vector, 1, verifying=verifying)
        if alone.accepted and alone.speaker != current.speaker:
            return True
        if current.label == "reject" and alone.label != "reject":
            return True
        if current.speaker not in candidates or self.cfg.session.join_far <= 0:
            return False
        own = self.decide({current.speaker: candidates[current.speaker]}, vector, 1, verifying=True,
                          enrolled=len(candidates), unsure_far=self.cfg.session.join_far)
        return own.label == "reject"

    def refresh(self, decision: Decision, vector: np.ndarray, enrolled: int, utterances: int) -> RefreshOutcome:
        """Offer an accepted utterance's own embedding to its speaker's profile (device/refresh.py):
        taken only when the decision clears the stricter refresh policy for its evidence."""
        threshold = refresh_threshold(self.bundle, self.cfg.refresh.policy, enrolled, decision.threshold, utterances,
                                      self.room is not None)
        return self.refresher.consider(decision.speaker, vector, decision.score, threshold, unsure=decision.unsure,
                                       locked=decision.speaker in locked_speakers(self.store))

    def decide(self, candidates: dict[str, np.ndarray], evidence: np.ndarray, utterances: int = 1,
               verifying: bool = False, enrolled: int | None = None, unsure_far: float | None = None) -> Decision:
        """The decision on a (fused) embedding at the policy in force for `enrolled` candidates (default:
        all of `candidates`) and this much evidence, with the "unsure" band below the accept threshold
        from `unsure_far` (default `[session] unsure_far`); with room adaptation both sides are centred
        on the room first and the room-centred calibration decides."""
        self.policy_in_use = self.policy
        room = self.room is not None
        if room:
            centre = self.room.centre()
            candidates = {name: centred(p, centre) for name, p in candidates.items()}
            evidence = centred(evidence, centre)
        enrolled = len(candidates) if enrolled is None else enrolled
        unsure_far = self.cfg.session.unsure_far if unsure_far is None else unsure_far
        threshold = self.bundle.threshold(self.policy_in_use, enrolled, utterances, room)
        unsure = self.bundle.unsure_threshold(threshold, unsure_far, enrolled, utterances, room)
        if len(candidates) == 1 and verifying:
            name, profile = next(iter(candidates.items()))
            return verify(self.scorer, profile, evidence, name, threshold, unsure)
        return identify(self.scorer, candidates, evidence, threshold, unsure)

    def session_tracker(self, gap_s: float | None) -> SessionTracker:
        """A tracker with this bundle's same-speaker check (unless the config turns splitting off)."""
        same = self.bundle.same_speaker_threshold if self.cfg.session.split_on_change else None
        return SessionTracker(gap_s, same)
