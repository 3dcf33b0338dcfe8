"""The Integrations panel: what the daemon recorded about MQTT and the webhook, shown to anyone on the
LAN as state and counts only."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from app.integrations import integration_rows
from device.store import Store
from tests.helpers import REPO

APP = str(REPO / "app" / "status.py")
RECORDED = {"mqtt": {"connected": True, "last_publish": None, "published": 41, "queued": 2, "dropped": 7},
            "webhook": {"connected": False, "last_publish": None, "published": 0, "queued": 1, "dropped": 0, "failed": 3}}


def test_rows() -> None:
    now = time.time()
    status = {"integrations": {**RECORDED, "mqtt": {**RECORDED["mqtt"], "last_publish": now - 75}}}
    assert integration_rows(status, True, now) == [
        {"integration": "MQTT", "state": "connected", "last publish": "1 min 15 s ago", "published": "41",
         "queued": "2", "dropped": "7", "failed": "–"},
        {"integration": "Webhook", "state": "unreachable", "last publish": "never", "published": "0", "queued": "1",
         "dropped": "0", "failed": "3"}]
    assert [r["state"] for r in integration_rows(status, False, now)] == ["daemon not running"] * 2
    assert integration_rows({}, True, now) == [] and integration_rows({"integrations": {}}, True, now) == []


def test_panel_on_the_page(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPEAKERID_STORE", str(tmp_path / "store.db"))
    monkeypatch.setenv("SPEAKERID_MODEL", str(REPO / "models" / "default"))
    monkeypatch.delenv("SPEAKERID_CONFIG", raising=False)
    with Store(tmp_path / "store.db") as store:
        store.set_status({"started": time.time() - 60, "state": "running", "integrations": RECORDED})
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    assert not at.exception, at.exception
    assert "Integrations" in [h.value for h in at.subheader]
    table = next(t.value for t in at.table if "integration" in t.value.columns)
    assert table["integration"].tolist() == ["MQTT", "Webhook"]
    assert table["state"].tolist() == ["connected", "unreachable"]
    assert (table["queued"].tolist(), table["dropped"].tolist()) == (["2", "1"], ["7", "0"])
    with Store(tmp_path / "store.db") as store:  # nothing configured: no panel
        store.set_status({"started": time.time() - 60, "state": "running"})
    at.run()
    assert "Integrations" not in [h.value for h in at.subheader]
