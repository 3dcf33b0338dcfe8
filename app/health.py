"""Health facts for the status page: is the daemon alive (heartbeat age), host temperature and
load. Pure functions over the store's status values and /sys, so they are testable without a Pi."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

THERMAL_ZONE = Path("/sys/class/thermal/thermal_zone0/temp")
MISSED_BEATS = 3  # the daemon is "down" after this many heartbeat intervals without a beat


@dataclass
class DaemonHealth:
    up: bool
    state: str  # 'up', 'down' or 'never started'
    heartbeat_age: float | None
    uptime_s: float | None


def daemon_health(status: dict[str, Any], heartbeat_s: float, now: float) -> DaemonHealth:
    """Up while the heartbeat is fresh and the daemon did not record a clean stop."""
    age = status.get("heartbeat_age")
    if age is None:
        return DaemonHealth(False, "never started", None, None)
    up = age <= MISSED_BEATS * heartbeat_s and status.get("state") != "stopped"
    started = status.get("started")
    uptime = now - float(started) if up and started is not None else None
    return DaemonHealth(up, "up" if up else "down", float(age), uptime)


def cpu_temperature(path: Path = THERMAL_ZONE) -> float | None:
    """Degrees Celsius, or None where the kernel does not expose it."""
    try:
        return int(path.read_text().strip()) / 1000.0
    except (OSError, ValueError):
        return None


def load_average() -> tuple[float, float, float] | None:
    try:
        return os.getloadavg()
    except OSError:
        return None


def duration(seconds: float | None) -> str:
    """'3 d 4 h', '2 h 5 min', '42 s' — a human uptime."""
    if seconds is None:
        return "–"
    s = int(seconds)
    days, hours, minutes = s // 86400, s % 86400 // 3600, s % 3600 // 60
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes} min"
    return f"{minutes} min {s % 60} s" if minutes else f"{s} s"
