"""Sessions: consecutive utterances of one person judged together.

A person at home rarely says one sentence; they talk. Fusing the unit embeddings of several
utterances of one speaker (their mean, unit length again) halves the error of a single utterance
or better, so the daemon re-decides after every utterance from all the evidence of the session it
belongs to. The bundle's calibration has a table per number of utterances fused
(device.calibration.EvidenceCalibration), so the threshold in force follows the evidence.

A session ends at a silence longer than `gap_s` or at a speaker change: an utterance whose
embedding scores below the bundle's calibrated same-speaker cosine against the session so far
starts a new session, and so does one that, judged on its own, is accepted as another enrolled
person than the one the session points to, scores as a reject against that person, or follows a
rejected session without being a reject itself (device/recognizer.py: the cosine alone lets
through changes between similar voices), so one person's evidence never lends weight to another's.
"""

from __future__ import annotations

import uuid
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from device.scoring import unit

EVIDENCE_UTTERANCES = 10  # a long conversation is judged on its latest utterances: bounded memory and work


@dataclass
class Session:
    """The latest EVIDENCE_UTTERANCES utterances of one speaker (unit embeddings, oldest first)."""

    vectors: deque[np.ndarray] = field(default_factory=lambda: deque(maxlen=EVIDENCE_UTTERANCES))
    speech_seconds: float = 0.0
    started: float = 0.0
    last: float = 0.0
    speaker: str | None = None  # the candidate the session's latest decision points to
    label: str | None = None  # that decision: accept, unsure or reject
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])

    @property
    def utterances(self) -> int:
        """How many utterances the session's evidence fuses (at most EVIDENCE_UTTERANCES)."""
        return len(self.vectors)

    def evidence(self) -> np.ndarray:
        """The fused embedding: unit mean of the utterances' unit embeddings."""
        return unit(np.mean(np.stack(self.vectors), axis=0))

    def agreement(self, vector: np.ndarray) -> float:
        """Cosine of `vector` with the session's fused embedding."""
        return float(np.dot(self.evidence(), unit(vector)))


class SessionTracker:
    """Groups utterances into sessions by time gap and speaker agreement.

    `same_speaker` None (a bundle without that calibration) joins by time alone; `gap_s` None never
    ends a session on time (the CLI's `--session`: the files are one conversation)."""

    def __init__(self, gap_s: float | None, same_speaker: float | None) -> None:
        self.gap_s, self.same_speaker = gap_s, same_speaker
        self.current: Session | None = None

    def expired(self, now: float) -> bool:
        """Whether the open session has seen no utterance for longer than the gap."""
        return self.current is not None and self.gap_s is not None and now - self.current.last > self.gap_s

    def close(self) -> Session | None:
        """End the open session (returned) so that the next utterance starts a new one."""
        done, self.current = self.current, None
        return done

    def add(self, vector: np.ndarray, speech_seconds: float, now: float) -> tuple[Session, Session | None]:
        """Add one utterance; returns (its session, the session it ended, if it ended one)."""
        ended = None
        if self.current is not None and (self.expired(now) or not self._agrees(vector)):
            ended = self.close()
        if self.current is None:
            self.current = Session(started=now)
        session = self.current
        session.vectors.append(unit(vector))
        session.speech_seconds += speech_seconds
        session.last = now
        return session, ended

    def _agrees(self, vector: np.ndarray) -> bool:
        return self.same_speaker is None or self.current.agreement(vector) >= self.same_speaker
