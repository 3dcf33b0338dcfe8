"""Decisions POSTed to a webhook as JSON, signed with HMAC-SHA256.

The header `X-Speakerid-Signature: sha256=<hex>` is HMAC-SHA256 over the exact request body with
the shared secret; a receiver recomputes it and compares in constant time, and checks the body's
`time` to refuse replays. A failed post (network error, 408, 429 or 5xx) is retried `retries` times
with a doubling back-off; other 4xx answers are not retried. All of it runs on the sink's own
thread behind a bounded outbox (device/outbox.py): a dead receiver never slows the daemon.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import threading
import time
import urllib.error
import urllib.request
from typing import Any

from device.config import WebhookConfig
from device.outbox import Outbox

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Speakerid-Signature"
MAX_BACKOFF_S = 60.0
RETRY_STATUS = {408, 429}


def sign(secret: bytes, body: bytes) -> str:
    """The signature header's value for `body`."""
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


class WebhookSink:
    name = "webhook"

    def __init__(self, cfg: WebhookConfig, secret: bytes) -> None:
        self.cfg, self._secret = cfg, secret
        self.outbox: Outbox[dict[str, Any]] = Outbox(cfg.queue)
        self.published = 0
        self.failed = 0  # decisions given up after every retry (or refused with a 4xx)
        self.attempts = 0
        self.last_publish: float | None = None
        self.reachable = False  # the latest attempt got an answer
        self._pending = 0
        self._stop = threading.Event()
        self._worker = threading.Thread(target=self._run, name="webhook-publisher", daemon=True)
        self._worker.start()

    def submit(self, message: dict[str, Any]) -> None:
        self.outbox.put(message)

    def status(self) -> dict[str, Any]:
        return {"connected": self.reachable, "last_publish": self.last_publish, "published": self.published,
                "queued": len(self.outbox) + self._pending, "dropped": self.outbox.dropped, "failed": self.failed}

    def flush(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not len(self.outbox) and not self._pending:
                return True
            time.sleep(0.02)
        return False

    def close(self, timeout: float = 2.0) -> None:
        self.flush(timeout)
        self._stop.set()
        self._worker.join(timeout=self.cfg.timeout_s + 1.0)
        left = len(self.outbox) + self._pending
        if left:
            log.warning("webhook: %d decision(s) not delivered at shutdown", left)

    def _run(self) -> None:
        while not self._stop.is_set():
            message = self.outbox.take(timeout=0.2)
            if message is None:
                continue
            self._pending = 1
            try:
                self._deliver(json.dumps(message, sort_keys=True).encode())
            finally:
                self._pending = 0

    def _deliver(self, body: bytes) -> None:
        delay = self.cfg.backoff_s
        for attempt in range(self.cfg.retries + 1):
            if attempt:
                if self._stop.wait(delay):
                    self.failed += 1
                    return
                delay = min(delay * 2, MAX_BACKOFF_S)
            retry, why = self._post(body)
            if why is None:
                self.published += 1
                self.last_publish = time.time()
                return
            if not retry:
                break
            log.warning("webhook: attempt %d failed (%s)%s", attempt + 1, why,
                        "; retrying" if attempt < self.cfg.retries else "")
        self.failed += 1
        log.error("webhook: decision not delivered (%s)", why)

    def _post(self, body: bytes) -> tuple[bool, str | None]:
        """(worth retrying, error or None on success)."""
        self.attempts += 1
        request = urllib.request.Request(self.cfg.url, data=body, method="POST", headers={
            "Content-Type": "application/json", "User-Agent": "speakerid", SIGNATURE_HEADER: sign(self._secret, body)})
        try:
            with urllib.request.urlopen(request, timeout=self.cfg.timeout_s) as response:
                response.read()
            self.reachable = True
            return False, None
        except urllib.error.HTTPError as exc:
            self.reachable = True
            return exc.code in RETRY_STATUS or exc.code >= 500, f"HTTP {exc.code}"
        except (urllib.error.URLError, OSError) as exc:
            self.reachable = False
            return True, str(getattr(exc, "reason", exc))
