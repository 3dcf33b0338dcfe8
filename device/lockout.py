"""Verification lockout: after `max_failures` rejected verifications of one claimed speaker within
`window_s`, further claims for that speaker are refused (without scoring) for `cooldown_s`.

Without it an attacker at the microphone could replay or vary recordings until one scores above
the threshold. The counters live in the store's settings table, so restarting the daemon or
running `python -m device verify` again does not reset them, and the status page can show them
(`locked_speakers`). An accepted verification clears that speaker's failures.

The read-modify-write of the counters is not one transaction: two processes failing the same
speaker in the same millisecond may count one failure instead of two, which only delays a lockout
by one attempt.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from device.config import LockoutConfig
from device.store import Store

SETTING = "verify_lockout"  # {speaker: {"failures": [times], "until": time}}


class LockedOut(ValueError):
    """Every claimed speaker is in a cool-down; the message names them and the time left."""


def _state(store: Store) -> dict[str, dict[str, Any]]:
    value = store.get_setting(SETTING, {})
    return value if isinstance(value, dict) else {}


def locked_speakers(store: Store, now: float | None = None) -> dict[str, float]:
    """Speakers whose verification is refused right now -> seconds of cool-down left (read-only)."""
    now = time.time() if now is None else now
    return {name: float(rec["until"]) - now for name, rec in sorted(_state(store).items())
            if float(rec.get("until", 0)) > now}


class Lockout:
    """The lockout for one store, applied by `Recognizer` (CLI verify and the daemon's verify mode)."""

    def __init__(self, store: Store, cfg: LockoutConfig) -> None:
        self.store, self.cfg = store, cfg

    def allowed(self, claims: Sequence[str], now: float | None = None) -> list[str]:
        """The claims not in a cool-down; LockedOut if there are none left."""
        locked = locked_speakers(self.store, now)
        free = [c for c in claims if c not in locked]
        if claims and not free:
            raise LockedOut("; ".join(f"{c}: locked out after {self.cfg.max_failures} failed verifications, "
                                      f"try again in {locked[c]:.0f} s" for c in claims))
        return free

    def record(self, claims: Sequence[str], accepted: str | None, now: float | None = None) -> None:
        """Count one verification: `accepted` is the speaker it accepted, None for a rejection of all claims."""
        now = time.time() if now is None else now
        state = _state(self.store)
        if accepted is not None:
            if state.pop(accepted, None) is not None:
                self.store.set_setting(SETTING, state)
            return
        for claim in claims:
            rec = state.get(claim, {})
            failures = [t for t in rec.get("failures", []) if now - float(t) < self.cfg.window_s] + [now]
            if len(failures) >= self.cfg.max_failures:
                state[claim] = {"failures": [], "until": now + self.cfg.cooldown_s}
            else:
                state[claim] = {"failures": failures, "until": float(rec.get("until", 0))}
        self.store.set_setting(SETTING, state)
