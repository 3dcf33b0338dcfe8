"""Every decision to the home around the device: MQTT (device/mqtt.py) and a webhook (device/webhook.py).

`Publisher` is what the daemon and the CLI hold. `decision(result_dict)` turns a decision into the
published message and hands it to each configured sink without blocking; `status()` is what the
daemon records for the status page. The message is built from an allow-list of fields, so neither
audio, nor MFCCs, nor embeddings can leave the device whatever the decision dict carries. With
nothing configured the publisher has no sinks and costs nothing.
"""

from __future__ import annotations

import logging
import re
import socket
import stat
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from device.config import Config, ConfigError
from device.store import Store

log = logging.getLogger(__name__)

CLI_WAIT_S = 3.0  # how long verify/identify wait for their decision to be delivered before exiting
DAEMON_WAIT_S = 2.0  # and the daemon for its queue at shutdown


class Sink(Protocol):
    name: str

    def submit(self, message: dict[str, Any]) -> None: ...
    def status(self) -> dict[str, Any]: ...
    def flush(self, timeout: float) -> bool: ...
    def close(self, timeout: float = 2.0) -> None: ...


LABELS = ("accept", "unsure", "reject")


def decision_message(result: dict[str, Any], device_id: str, room: str = "") -> dict[str, Any]:
    """The published JSON: time, device, kind, decision ('accept' | 'unsure' | 'reject'), accepted,
    speaker (or "unknown" whenever not accepted, unsure included), claim (verify), score, threshold,
    margin, utterances (of the session the decision rests on), session (its id, null without one)
    and final (false while the daemon's session may still change its answer; true once it ended, and
    for the CLI's decisions), and with `[household] room` set, room (where this device is). Nothing
    else, by construction."""
    accepted, label = bool(result["accepted"]), str(result["decision"])
    if label not in LABELS or (label == "accept") != accepted:
        raise ValueError(f"decision {label!r} does not agree with accepted={accepted}")
    speaker, session = result.get("speaker"), result.get("session")
    return {"time": round(float(result.get("time") or time.time()), 3), "device": device_id,
            "kind": str(result["kind"]), "decision": label, "accepted": accepted,
            "speaker": str(speaker) if accepted and speaker else "unknown", "claim": result.get("claim"),
            "score": round(float(result["score"]), 4), "threshold": round(float(result["threshold"]), 4),
            "margin": round(float(result["margin"]), 4), "utterances": int(result.get("utterances", 1)),
            "session": None if session is None else str(session), "final": bool(result.get("final", True)),
            **({"room": room} if room else {})}


def read_secret(path: str, key: str) -> str:
    """The first line of a secret file that only its owner may read (0600 or stricter)."""
    p = Path(path).expanduser()
    try:
        mode = p.stat().st_mode
    except FileNotFoundError:
        raise ConfigError(f"{key}: {p} does not exist") from None
    if not stat.S_ISREG(mode):
        raise ConfigError(f"{key}: {p} is not a regular file")
    if mode & 0o077:
        raise ConfigError(f"{key}: {p} is readable by other users (mode {stat.S_IMODE(mode):04o}); "
                          f"a secret file must be 0600: chmod 600 {p}")
    try:
        lines = p.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{key}: cannot read {p}: {exc}") from None
    if not lines or not lines[0].strip():
        raise ConfigError(f"{key}: {p} is empty")
    return lines[0].strip()


def default_device_id() -> str:
    """The hostname with only letters, digits, '_' and '-' kept (MQTT topics, HA object ids)."""
    return re.sub(r"[^A-Za-z0-9_-]+", "-", socket.gethostname()).strip("-")[:64] or "speakerid"


class Publisher:
    def __init__(self, sinks: list[Sink], device_id: str, room: str = "") -> None:
        self.sinks, self.device_id, self.room = sinks, device_id, room

    @classmethod
    def from_config(cls, cfg: Config, *, daemon: bool, speakers: Callable[[], list[str]] | None = None,
                    model: str = "", discovery_refresh_s: float | None = None) -> Publisher:
        """The sinks `cfg` asks for; a ConfigError (e.g. a secret file others can read) before any
        connection is made, so the daemon and CLI refuse to start rather than run half-configured."""
        device_id = cfg.mqtt.device_id or default_device_id()
        sinks: list[Sink] = []
        password = read_secret(cfg.mqtt.password_file, "mqtt.password_file") if cfg.mqtt.password_file else None
        secret = read_secret(cfg.webhook.secret_file, "webhook.secret_file") if cfg.webhook.url else None
        if cfg.mqtt.host:
            from device.mqtt import DISCOVERY_REFRESH_S, MqttSink  # paho only where MQTT is configured

            sinks.append(MqttSink(cfg.mqtt, device_id, password, daemon=daemon, speakers=speakers, model=model,
                                  discovery_refresh_s=discovery_refresh_s or DISCOVERY_REFRESH_S,
                                  room=cfg.household.room, room_expire_s=cfg.household.room_expire_s))
        if cfg.webhook.url and secret is not None:
            from device.webhook import WebhookSink

            sinks.append(WebhookSink(cfg.webhook, secret.encode()))
        return cls(sinks, device_id, cfg.household.room)

    def decision(self, result: dict[str, Any]) -> None:
        """Queue one decision for every sink; never blocks and never raises (a publishing problem
        must not cost a decision)."""
        if not self.sinks:
            return
        try:
            message = decision_message(result, self.device_id, self.room)
        except (KeyError, TypeError, ValueError) as exc:
            log.error("decision not published: %s", exc)
            return
        for sink in self.sinks:
            sink.submit(message)

    def status(self) -> dict[str, dict[str, Any]]:
        """Per sink: connected, last_publish, published, queued, dropped (webhook: failed). No hosts,
        urls or secrets: the status page shows this to anyone on the LAN."""
        return {sink.name: sink.status() for sink in self.sinks}

    def flush(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        return all(sink.flush(max(0.0, deadline - time.monotonic())) for sink in self.sinks)

    def close(self, timeout: float = DAEMON_WAIT_S) -> None:
        for sink in self.sinks:
            sink.close(timeout)

    def __enter__(self) -> Publisher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close(CLI_WAIT_S)


def enrolled_names(store_path: Path) -> Callable[[], list[str]]:
    """For discovery: a function reading the enrolled names through its own read-only connection
    (it runs on the MQTT worker thread; SQLite connections stay on their thread)."""

    def names() -> list[str]:
        with Store(store_path, readonly=True) as store:
            return [s.name for s in store.list_speakers()]

    return names
