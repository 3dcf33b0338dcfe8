"""The page's Integrations panel: MQTT and the webhook as the daemon last recorded them (its heartbeat
stores `Publisher.status()`, device/publish.py). Anyone on the LAN sees the page, so this shows
state and counts only: no broker host, webhook url, topic, user or secret."""

from __future__ import annotations

import time
from typing import Any

import streamlit as st

from app.health import duration

LABELS = {"mqtt": "MQTT", "webhook": "Webhook"}


def integration_rows(status: dict[str, Any], daemon_up: bool, now: float) -> list[dict[str, str]]:
    """One row per configured integration: state, last publish, published, queued, dropped, failed."""
    rows = []
    for name, s in sorted((status.get("integrations") or {}).items()):
        if not isinstance(s, dict):
            continue
        if not daemon_up:
            state = "daemon not running"
        elif s.get("connected"):
            state = "connected" if name == "mqtt" else "reachable"
        elif name == "mqtt":
            state = "not connected"
        else:
            state = "unreachable" if s.get("failed") or s.get("published") else "no post yet"
        last = s.get("last_publish")
        rows.append({"integration": LABELS.get(name, name), "state": state,
                     "last publish": "never" if last is None else f"{duration(max(0.0, now - float(last)))} ago",
                     "published": str(s.get("published", 0)), "queued": str(s.get("queued", 0)),
                     "dropped": str(s.get("dropped", 0)), "failed": str(s.get("failed", "–"))})
    return rows


def integrations_panel(status: dict[str, Any], daemon_up: bool) -> None:
    rows = integration_rows(status, daemon_up, time.time())
    if not rows:
        return  # nothing configured: MQTT and the webhook are opt-in (README, "Home Assistant")
    st.subheader("Integrations")
    st.table({key: [row[key] for row in rows] for key in rows[0]})
