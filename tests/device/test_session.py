"""Sessions (device/session.py): utterances of one speaker fused, split at a silence or a new voice,
and the decision's three answers (accept, unsure, reject)."""

from __future__ import annotations

import numpy as np
import pytest

from device.scoring import Decision, Scorer, identify, unit, verify
from device.session import EVIDENCE_UTTERANCES, SessionTracker


def vec(*xs: float) -> np.ndarray:
    return unit(np.array(xs, dtype=np.float32))


def test_utterances_within_the_gap_form_one_session_with_fused_evidence() -> None:
    tracker = SessionTracker(gap_s=8.0, same_speaker=0.5)
    first, ended = tracker.add(vec(1, 0, 0), 2.0, now=100.0)
    second, _ = tracker.add(vec(1, 1, 0), 1.5, now=105.0)
    assert ended is None and second is first and second.utterances == 2 and second.speech_seconds == 3.5
    np.testing.assert_allclose(second.evidence(), vec(1 + 2 ** -0.5, 2 ** -0.5, 0), rtol=1e-6)


def test_a_silence_longer_than_the_gap_ends_the_session() -> None:
    tracker = SessionTracker(gap_s=8.0, same_speaker=None)
    first, _ = tracker.add(vec(1, 0), 1.0, now=0.0)
    assert not tracker.expired(8.0) and tracker.expired(8.1)
    later, ended = tracker.add(vec(1, 0), 1.0, now=8.1)
    assert ended is first and later is not first and later.utterances == 1


def test_another_voice_starts_a_new_session() -> None:
    tracker = SessionTracker(gap_s=8.0, same_speaker=0.5)
    first, _ = tracker.add(vec(1, 0.1, 0), 1.0, now=0.0)
    other, ended = tracker.add(vec(0, 0, 1), 1.0, now=1.0)  # cosine 0 with the session: a new speaker
    assert ended is first and other.id != first.id and other.utterances == 1
    assert first.utterances == 1  # the stranger's evidence never joined the first session


def test_without_a_gap_a_session_never_ends_on_time_and_close_ends_it() -> None:
    tracker = SessionTracker(gap_s=None, same_speaker=None)
    first, _ = tracker.add(vec(1, 0), 1.0, now=0.0)
    assert not tracker.expired(1e9)
    assert tracker.add(vec(0, 1), 1.0, now=1e9)[0] is first  # no same-speaker check either
    assert tracker.close() is first and tracker.current is None


@pytest.mark.parametrize("score, label", [(0.9, "accept"), (0.5, "accept"), (0.45, "unsure"), (0.3, "unsure"),
                                          (0.29, "reject")])
def test_decision_labels_around_the_unsure_band(score: float, label: str) -> None:
    d = Decision(score >= 0.5, "ann", score, 0.5, unsure_below=0.3)
    assert d.label == label and d.unsure == (label == "unsure") and d.accepted == (label == "accept")
    assert Decision(False, "ann", 0.45, 0.5).label == "reject"  # no band: never unsure


def test_verify_and_identify_say_unsure_with_the_closest_candidate() -> None:
    scorer = Scorer()
    profiles = {"ann": vec(1, 0), "bob": vec(0, 1)}
    test = vec(1, 0.9)  # cosine 0.74 with ann, 0.67 with bob
    found = identify(scorer, profiles, test, threshold=0.8, unsure_below=0.7)
    assert (found.label, found.speaker) == ("unsure", "ann")
    assert verify(scorer, profiles["bob"], test, "bob", 0.8, 0.7).label == "reject"


def test_a_long_conversation_is_judged_on_its_latest_utterances() -> None:
    tracker = SessionTracker(gap_s=None, same_speaker=None)
    for i in range(EVIDENCE_UTTERANCES + 5):
        session, _ = tracker.add(vec(1, 0) if i < 5 else vec(0, 1), 1.0, now=float(i))
    assert session.utterances == EVIDENCE_UTTERANCES and session.speech_seconds == EVIDENCE_UTTERANCES + 5
    np.testing.assert_allclose(session.evidence(), vec(0, 1), atol=1e-6)  # the first five have left the evidence
