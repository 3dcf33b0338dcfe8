"""A bounded, thread-safe FIFO between the daemon's decision loop and a slow network sender.

`put` never blocks and never fails: when the box is full the oldest item is dropped and counted,
so a broker or webhook that is away for hours costs a fixed amount of memory and never stalls the
audio path. The newest decisions are the ones worth delivering late; the oldest are the stalest.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Generic, TypeVar

T = TypeVar("T")


class Outbox(Generic[T]):
    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError(f"outbox limit must be at least 1, got {limit}")
        self.limit = limit
        self.dropped = 0  # items pushed out by newer ones
        self._items: deque[T] = deque()
        self._cond = threading.Condition()

    def put(self, item: T) -> None:
        with self._cond:
            if len(self._items) >= self.limit:
                self._items.popleft()
                self.dropped += 1
            self._items.append(item)
            self._cond.notify_all()

    def take(self, timeout: float) -> T | None:
        """The oldest item, waiting up to `timeout` seconds for one; None if none came."""
        with self._cond:
            if not self._items:
                self._cond.wait(timeout)
            if not self._items:
                return None
            item = self._items.popleft()
            self._cond.notify_all()
            return item

    def wait_empty(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._items:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
            return True

    def __len__(self) -> int:
        with self._cond:
            return len(self._items)
