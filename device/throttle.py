"""A persistent throttle: after `free` counted attempts, each next attempt waits base_s, 2 x base_s,
... up to max_s after the previous one. The counter lives in the store's settings table, so a page
reload, a new browser session or a restarted server does not reset it.

The admin login counts wrong passwords (device/admin.py); the status page's anonymous Try-it counts
every decision it gives (app/tryit.py), so accept/reject answers cannot be harvested quickly to
tune an impersonation. `forget_s` lets a throttle forget attempts after a quiet spell.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from device.store import Store


@dataclass(frozen=True)
class Throttle:
    key: str  # the settings key holding {"count": n, "last": time}
    free: int = 3  # attempts allowed before any delay
    base_s: float = 2.0
    max_s: float = 300.0
    forget_s: float | None = None  # None: only `clear` resets the count

    def delay_after(self, count: int) -> float:
        """Seconds to wait after `count` counted attempts."""
        if count < self.free:
            return 0.0
        return min(self.max_s, self.base_s * 2 ** (count - self.free))

    def _state(self, store: Store, now: float) -> tuple[int, float]:
        value = store.get_setting(self.key, {"count": 0, "last": 0.0})
        count, last = int(value.get("count", 0)), float(value.get("last", 0.0))
        if self.forget_s is not None and now - last > self.forget_s:
            return 0, 0.0
        return count, last

    def count(self, store: Store, now: float | None = None) -> int:
        """Attempts counted and not forgotten."""
        return self._state(store, time.time() if now is None else now)[0]

    def remaining(self, store: Store, now: float | None = None) -> float:
        """Seconds until the next attempt may be made (0 = now)."""
        now = time.time() if now is None else now
        count, last = self._state(store, now)
        return max(0.0, last + self.delay_after(count) - now)

    def record(self, store: Store, now: float | None = None) -> float:
        """Count one attempt; returns the wait before the next one."""
        now = time.time() if now is None else now
        count = self._state(store, now)[0] + 1
        store.set_setting(self.key, {"count": count, "last": now})
        return self.delay_after(count)

    def clear(self, store: Store) -> None:
        store.set_setting(self.key, {"count": 0, "last": 0.0})
