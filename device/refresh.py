"""Profile refresh: after a high-confidence accept, the utterance's embedding may refresh that
person's profile, so a profile enrolled at one table in one week keeps up with the voice the device
hears in the rooms and months that follow.

The entry point, for the recognizer to call after an accepted decision:

    refresher = ProfileRefresher(store, cfg.refresh, model_sha)
    threshold = refresh_threshold(bundle, cfg.refresh.policy, enrolled, decision.threshold, utterances)
    outcome = refresher.consider(name, embedding, score, threshold, unsure=..., locked=..., event_id=...)

`consider` answers every ordinary "no" with `RefreshOutcome(applied=False, reason=...)` instead of
raising. The rule:
- only with `[refresh] enabled`, only a score >= `threshold` (the refresh policy's threshold, never
  below the accept threshold: `refresh_threshold`), never an unsure decision, never while the speaker
  is locked out (device/lockout.py) or held by the admin (`profiles hold`), never a profile enrolled
  with another model;
- bounded: the profile is the unit mean of the enrolment sample embeddings plus the `max_recent`
  newest active refresh vectors; an older refresh becomes 'evicted'. Enrolment samples are never
  dropped, so the enrolment always weighs in;
- drift guard: each accepted vector is close to the *current* profile, so without an anchor a run of
  them could walk the profile away from the person enrolled (a sibling, a television). A refresh whose
  profile would have cosine < `min_similarity` with the enrolment-only profile is refused and
  recorded 'refused' with the reason;
- undo: `revert` marks refreshes 'reverted' and rebuilds the profile from what is left.
A refresh writes the profile and its history in one store transaction (`Store.edit_profile`), and
the profile's `updated` time moves, so a running Recognizer reloads it.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from device.bundle import Bundle
from device.config import RefreshConfig
from device.scoring import unit
from device.store import ProfileHistory, RefreshRecord, Store


@dataclass(frozen=True)
class RefreshOutcome:
    applied: bool
    reason: str  # "refreshed", or why not
    refresh_id: int | None = None  # the history row written (applied or refused by the drift guard)
    similarity: float | None = None  # cosine of the profile it would make with the enrolment-only profile


class RefreshError(ValueError):
    """An admin action on refreshes that cannot be done; the message names the speaker and the problem."""


def profile_of(vectors: Sequence[np.ndarray]) -> np.ndarray:
    """The unit mean of embeddings: what a profile is (device/enroll.py's `Enroller.mean`)."""
    return unit(np.mean(np.stack(vectors), axis=0))


def refresh_threshold(bundle: Bundle, policy: str, enrolled: int, accept_threshold: float, utterances: int = 1,
                      room: bool = False) -> float:
    """The score a refresh needs: the refresh policy's threshold for the evidence the decision rests
    on (`utterances` of a session; `room`: room-centred scores), never below the accept threshold."""
    return max(bundle.threshold(policy, enrolled, utterances, room), accept_threshold)


class ProfileRefresher:
    """Decides whether an accepted utterance refreshes its speaker's profile, and records it."""

    def __init__(self, store: Store, cfg: RefreshConfig, model_sha: str) -> None:
        self.store, self.cfg, self.model_sha = store, cfg, model_sha

    def consider(self, name: str, embedding: np.ndarray, score: float, threshold: float, *, unsure: bool,
                 locked: bool, event_id: int | None = None, now: float | None = None) -> RefreshOutcome:
        """Refresh `name`'s profile with `embedding` (an accepted utterance's) if the rule allows it."""
        why_not = self._decision_refused(name, score, threshold, unsure, locked)
        if why_not:
            return RefreshOutcome(False, why_not)
        vector = unit(embedding)
        with self.store.edit_profile(name) as edit:
            if edit is None:
                return RefreshOutcome(False, f"{name} is not enrolled")
            history = edit.history
            why_not = self._profile_refused(history)
            if why_not:
                return RefreshOutcome(False, why_not)
            room = self.cfg.max_recent - 1  # the newest refreshes that stay beside this one
            kept = history.active[-room:] if room else []
            profile = profile_of([*history.enrolment, *(r.embedding for r in kept), vector])
            similarity = float(np.dot(profile, profile_of(history.enrolment)))
            record = RefreshRecord(vector, score, threshold, time.time() if now is None else now, "active",
                                   event_id=event_id)
            if similarity < self.cfg.min_similarity:
                record.state = "refused"
                record.reason = (f"drift: the profile would be at cosine {similarity:.3f} from the enrolment profile "
                                 f"(refresh.min_similarity {self.cfg.min_similarity:.2f})")
                return RefreshOutcome(False, record.reason, edit.add(record), similarity)
            kept_ids = {r.id for r in kept}
            edit.mark([r.id for r in history.active if r.id not in kept_ids], "evicted",
                      f"{self.cfg.max_recent} newer refreshes")
            refresh_id = edit.add(record)
            edit.set_embedding(profile)
        return RefreshOutcome(True, "refreshed", refresh_id, similarity)

    def _decision_refused(self, name: str, score: float, threshold: float, unsure: bool, locked: bool) -> str:
        """Why this decision may not refresh anything ('' if it may)."""
        if not self.cfg.enabled:
            return "refresh is off ([refresh] enabled = false)"
        if unsure:
            return "the decision was unsure"
        if locked:
            return f"{name} is locked out"
        if score < threshold:
            return f"score {score:.3f} is below the refresh threshold {threshold:.3f}"
        return ""

    def _profile_refused(self, history: ProfileHistory) -> str:
        """Why this profile may not be refreshed ('' if it may)."""
        name = history.speaker.name
        if history.speaker.model_sha != self.model_sha:
            return f"{name} was enrolled with another model"
        if history.hold:
            return f"{name}'s refreshes are on hold"
        if not history.enrolment:
            return f"{name} has no enrolment samples to anchor a refresh"
        return ""


def history(store: Store, name: str) -> ProfileHistory:
    found = store.profile_history(name)
    if found is None:
        raise RefreshError(f"{name}: not enrolled in {store.path}")
    return found


def revert(store: Store, name: str, to: int | None = None) -> list[int]:
    """Mark `name`'s active refreshes after refresh `to` (all of them with None) 'reverted' and
    rebuild the profile from the enrolment samples and the refreshes kept; returns the ids reverted."""
    with store.edit_profile(name) as edit:
        if edit is None:
            raise RefreshError(f"{name}: not enrolled in {store.path}")
        active = edit.history.active
        if to is not None and to not in {r.id for r in active}:
            raise RefreshError(f"{name}: refresh {to} is not an active refresh of {name} "
                               f"(active: {', '.join(str(r.id) for r in active) or 'none'})")
        kept = [r for r in active if to is not None and r.id <= to]
        reverted = [r.id for r in active if to is None or r.id > to]
        if reverted:
            if not edit.history.enrolment:
                raise RefreshError(f"{name}: no enrolment samples to rebuild the profile from")
            edit.mark(reverted, "reverted", "reverted by the admin")
            edit.set_embedding(profile_of([*edit.history.enrolment, *(r.embedding for r in kept)]))
    return reverted


def set_hold(store: Store, name: str, hold: bool) -> None:
    """Stop (or allow again) refreshes of `name`'s profile."""
    if not store.set_refresh_hold(name, hold):
        raise RefreshError(f"{name}: not enrolled in {store.path}")


def history_dict(h: ProfileHistory) -> dict[str, Any]:
    return {"name": h.speaker.name, "enrolment_samples": len(h.enrolment), "hold": h.hold,
            "active": len(h.active),
            "refreshes": [{"id": r.id, "time": r.time, "score": round(r.score, 4), "threshold": round(r.threshold, 4),
                           "state": r.state, "reason": r.reason, "event_id": r.event_id} for r in h.refreshes]}


def history_text(h: ProfileHistory) -> str:
    head = (f"{h.speaker.name}: {len(h.enrolment)} enrolment samples, {len(h.active)} active refreshes, "
            f"refresh hold {'on' if h.hold else 'off'}")
    rows = [f"{r.id:>5}  {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(r.time))}  score {r.score:+.3f}  "
            f"threshold {r.threshold:+.3f}  {r.state:<8}  {r.reason}".rstrip() for r in h.refreshes]
    return "\n".join([head, *rows])
