"""The status page's logic through Streamlit's AppTest (no browser): health, events, speakers,
admin refusal and admin actions, plus the pure helpers behind them. File uploads are covered
by the browser test (AppTest cannot drive st.file_uploader)."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from app.health import cpu_temperature, daemon_health, duration
from app.options import page_config
from app.tables import todays_counts
from device import admin
from device.bundle import Bundle
from device.config import DEFAULT_MODEL, RefreshConfig
from device.refresh import ProfileRefresher, profile_of
from device.scoring import unit
from device.store import LAST_SYNC, Event, Sample, Speaker, Store
from tests.helpers import REPO

APP = str(REPO / "app" / "status.py")


@pytest.fixture
def store(tmp_path: Path, tiny_bundle: Path, monkeypatch: pytest.MonkeyPatch):
    """An empty store the page is pointed at through the environment."""
    monkeypatch.setenv("SPEAKERID_STORE", str(tmp_path / "store.db"))
    monkeypatch.setenv("SPEAKERID_MODEL", str(tiny_bundle))
    monkeypatch.delenv("SPEAKERID_CONFIG", raising=False)
    with Store(tmp_path / "store.db") as s:
        yield s


def enroll_fake(store: Store, bundle_dir: Path, *names: str) -> None:
    bundle = Bundle.load(bundle_dir)
    rng = np.random.default_rng(0)
    for name in names:
        store.save_speaker(Speaker(name, bundle.name, bundle.meta["sha256"], rng.normal(size=bundle.embedding_dim), 3,
                                   7.5, 0.87), [])


def page() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    assert not at.exception, at.exception
    return at


def metric(at: AppTest, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


def keys(at: AppTest) -> set[str]:
    return {b.key for b in at.button}


def test_no_store_yet(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPEAKERID_STORE", str(tmp_path / "nothing" / "store.db"))
    at = page()
    assert any("No store at" in i.value for i in at.info)
    assert not (tmp_path / "nothing").exists()  # looking does not create a store


def test_health_up_then_down(store: Store, tiny_bundle: Path) -> None:
    store.set_status({"started": time.time() - 3700, "state": "running", "model": "tiny", "runtime": "tflite-runtime 2.14",
                      "audio_device": "USB mic", "policy": "eer"})
    at = page()
    assert metric(at, "Daemon") == "up" and metric(at, "Uptime").startswith("1 h")
    assert metric(at, "Model") == Bundle.load(tiny_bundle).name
    facts = at.table[0].value
    text = facts.to_string()
    assert "USB mic" in text and "tflite-runtime 2.14" in text and "policy eer" in text and "MB" in text
    with sqlite3.connect(store.path) as db:  # the daemon died 30 s ago without a word
        db.execute("UPDATE status SET value = ? WHERE key = 'heartbeat'", (str(time.time() - 30),))
    at.run()
    assert metric(at, "Daemon") == "down" and metric(at, "Uptime") == "–"


def test_events_counts_speakers_and_heatmap(store: Store, tiny_bundle: Path) -> None:
    enroll_fake(store, tiny_bundle, "ann", "bob")
    now = time.time()
    mfcc = np.random.default_rng(1).normal(size=(250, 13))
    for i, (who, ok) in enumerate([("ann", True), ("ann", False), ("bob", True), (None, False)]):
        store.add_event(Event("identify", who, 0.8 if ok else 0.1, 0.5, ok, 2.0 + i, snr_db=20.0, mfcc=mfcc,
                              time=now - 10 + i))
    at = page()  # anonymous: decisions without scores, and no closest name for a rejection
    events, counts, speakers = (d.value for d in at.dataframe)
    assert list(events["best match"]) == ["–", "bob", "–", "ann"]
    assert list(events["decision"]) == ["⛔ reject", "✅ accept", "⛔ reject", "✅ accept"]
    assert list(events["utterances"]) == [1, 1, 1, 1]
    assert {"length (s)", "SNR (dB)"} <= set(events.columns) and not {"score", "threshold"} & set(events.columns)
    assert counts.set_index("speaker").loc["ann"].tolist() == [1, 0, 0]  # accepted, unsure, rejected
    assert list(speakers["name"]) == ["ann", "bob"] and speakers["last seen"].iloc[0] != "–"
    assert len(at.get("vega_lite_chart")) == 1  # the MFCC heatmap only
    admin.set_password(store, "correct horse")
    at.run()
    at.text_input(key="admin_password").input("correct horse")
    at.button(key="admin_unlock").click().run()
    events, counts, _ = (d.value for d in at.dataframe)  # the admin sees everything
    assert list(events["best match"]) == ["–", "bob", "ann", "ann"]
    assert {"score", "threshold", "length (s)", "SNR (dB)"} <= set(events.columns)
    assert counts.set_index("speaker").loc["ann"].tolist() == [1, 0, 1]
    assert len(at.get("vega_lite_chart")) == 2  # score timeline + MFCC heatmap


def test_an_unsure_session_is_one_line_that_names_nobody_to_visitors(store: Store, tiny_bundle: Path) -> None:
    enroll_fake(store, tiny_bundle, "ann")
    now = time.time()
    for utterances, score in enumerate((0.42, 0.47, 0.46), start=1):  # one session heard three times
        store.add_event(Event("identify", "ann", score, 0.5, False, 2.0, session="s1", decision="unsure",
                              utterances=utterances, time=now - 3 + utterances))
    at = page()
    events, counts, _ = (d.value for d in at.dataframe)
    assert events[["decision", "utterances", "best match"]].values.tolist() == [["🟡 UNSURE", 3, "–"]]
    assert counts.to_dict("records") == [{"speaker": "–", "accepted": 0, "unsure": 1, "rejected": 0}]
    admin.set_password(store, "correct horse")
    at.run()
    at.text_input(key="admin_password").input("correct horse")
    at.button(key="admin_unlock").click().run()
    events = at.dataframe[0].value  # the admin sees the closest name and the score of the latest decision
    assert events[["decision", "best match", "score"]].values.tolist() == [["🟡 UNSURE", "ann", 0.46]]


def test_threshold_in_force_counts_the_enrolled_and_shows_expected_rates(store: Store, tiny_bundle: Path) -> None:
    enroll_fake(store, tiny_bundle, "ann", "bob", "cy")
    bundle = Bundle.load(tiny_bundle)
    at = page()
    health = next(t.value for t in at.table)
    text = dict(zip(health[""], health["value"]))["Threshold in force"]
    point = bundle.operating_point("far1", 3)
    assert text.startswith(f"policy far1 → {point['threshold']:+.3f} with 3 enrolled")
    assert f"a stranger accepted as anyone {100 * point['expected']['stranger_accepted']:.1f} %" in text
    assert point["threshold"] > bundle.threshold("far1", 1)  # three people: a stricter threshold than one


def test_admin_off_until_a_password_is_set(store: Store, tiny_bundle: Path) -> None:
    enroll_fake(store, tiny_bundle, "ann")
    at = page()
    assert any("no admin password is set" in i.value and "set-admin-password" in i.value for i in at.info)
    assert not keys(at) & {"admin_unlock", "delete_go", "enroll_go", "policy_go"}


def test_admin_wrong_then_right_password(store: Store, tiny_bundle: Path) -> None:
    enroll_fake(store, tiny_bundle, "ann", "bob")
    admin.set_password(store, "correct horse")
    at = page()
    assert "delete_go" not in keys(at)
    at.text_input(key="admin_password").input("wrong horse")
    at.button(key="admin_unlock").click().run()
    assert any("wrong password" in e.value for e in at.error) and "delete_go" not in keys(at)

    at.text_input(key="admin_password").input("correct horse")
    at.button(key="admin_unlock").click().run()
    assert {"delete_go", "enroll_go", "policy_go"} <= keys(at)
    at.selectbox(key="delete_name").set_value("bob")
    at.button(key="delete_go").click().run()
    assert [s.name for s in store.list_speakers()] == ["ann"]
    at.selectbox(key="policy_choice").set_value("eer")
    at.button(key="policy_go").click().run()
    assert store.get_setting("policy") == "eer" and any("policy eer" in s.value for s in at.success)
    at.button(key="admin_lock").click().run()
    assert "delete_go" not in keys(at)


def test_page_options(tmp_path: Path) -> None:
    env = {"SPEAKERID_STORE": "/env/store.db", "SPEAKERID_MODEL": "/env/model"}
    assert page_config([], {}).model == DEFAULT_MODEL
    assert page_config([], env).store == "/env/store.db"
    cfg = page_config(["--store", "/arg/store.db", "--model", "/arg/model"], env)
    assert (cfg.store, cfg.model) == ("/arg/store.db", "/arg/model")
    (tmp_path / "c.toml").write_text("heartbeat_s = 1.0\n")
    assert page_config(["--config", str(tmp_path / "c.toml")], {}).heartbeat_s == 1.0


def test_health_helpers(tmp_path: Path) -> None:
    assert daemon_health({"heartbeat_age": None}, 5, 0).state == "never started"
    assert daemon_health({"heartbeat_age": 14.0, "started": 100.0}, 5, 160.0).uptime_s == 60.0
    assert daemon_health({"heartbeat_age": 16.0}, 5, 0).state == "down"
    assert daemon_health({"heartbeat_age": 1.0, "state": "stopped"}, 5, 0).state == "down"
    assert [duration(s) for s in (None, 42, 125, 7260, 90000)] == ["–", "42 s", "2 min 5 s", "2 h 1 min", "1 d 1 h"]
    (tmp_path / "temp").write_text("48312\n")
    assert cpu_temperature(tmp_path / "temp") == pytest.approx(48.312)
    assert cpu_temperature(tmp_path / "missing") is None


def test_todays_counts_ignore_yesterday() -> None:
    now = time.time()
    events = [Event("verify", "ann", 1, 0, True, 1, time=now), Event("verify", "ann", 0, 1, False, 1, time=now - 2 * 86400)]
    assert todays_counts(events, now).to_dict("records") == [{"speaker": "ann", "accepted": 1, "unsure": 0,
                                                              "rejected": 0}]


def test_admin_reverts_and_holds_refreshes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPEAKERID_STORE", str(tmp_path / "store.db"))
    monkeypatch.setenv("SPEAKERID_MODEL", str(REPO / DEFAULT_MODEL))
    monkeypatch.delenv("SPEAKERID_CONFIG", raising=False)
    bundle = Bundle.load(REPO / DEFAULT_MODEL)
    sha = str(bundle.meta["sha256"])
    rng = np.random.default_rng(3)
    base = rng.normal(size=bundle.embedding_dim)
    enrol = [unit(base + 0.1 * rng.normal(size=base.size)) for _ in range(3)]
    with Store(tmp_path / "store.db") as store:
        store.save_speaker(Speaker("ann", bundle.name, sha, profile_of(enrol), 3, 7.5, 0.9),
                           [Sample(v, 3.0, 2.5, 30.0) for v in enrol])
        enrolled = store.profiles(sha)["ann"]
        refresher = ProfileRefresher(store, RefreshConfig(enabled=True), sha)
        for _ in range(2):
            assert refresher.consider("ann", unit(base + 0.1 * rng.normal(size=base.size)), 0.95, 0.9, unsure=False,
                                      locked=False).applied
        admin.set_password(store, "correct horse")
    at = page()
    at.text_input(key="admin_password").input("correct horse")
    at.button(key="admin_unlock").click().run()
    table = next(t.value for t in at.table if "active refreshes" in t.value.columns)
    assert table.loc["ann", "active refreshes"] == 2 and table.loc["ann", "last refresh"] != "–"
    at.toggle(key="refresh_hold").set_value(True).run()
    with Store(tmp_path / "store.db") as store:
        assert store.profile_history("ann").hold
    assert any("ann: refreshes on hold" in s.value for s in at.success)
    at.button(key="refresh_revert").click().run()
    assert not at.exception, at.exception
    assert any("ann: reverted 2 refreshes" in s.value for s in at.success)
    with Store(tmp_path / "store.db") as store:
        assert np.array_equal(store.profiles(sha)["ann"], enrolled)
        assert [r.state for r in store.profile_history("ann").refreshes] == ["reverted", "reverted"]
    table = next(t.value for t in at.table if "active refreshes" in t.value.columns)
    assert table.loc["ann"].tolist() == [0, "–", "on"]
    assert at.button(key="refresh_revert").disabled


def test_household_panel_shows_the_last_sync(store: Store) -> None:
    at = page()
    assert not any(h.value == "Household" for h in at.subheader)  # nothing shared: no panel
    store.set_setting(LAST_SYNC, {"time": time.time() - 90, "received": 3, "merged": ["ann"], "deleted": [],
                                  "other_model": ["old"], "rejected": 2,
                                  "devices": {"kitchen": ["ann", "bob"], "hall": ["old"]}})
    at.run()
    assert any(h.value == "Household" for h in at.subheader)
    assert any("Last sync 1 min" in m.value and "1 profiles taken" in m.value for m in at.markdown)
    table = next(t.value for t in at.table if "profiles it shares" in t.value.columns)
    assert table.to_dict("list") == {"device": ["hall", "kitchen"], "profiles it shares": ["old", "ann, bob"]}
    warnings = " ".join(w.value for w in at.warning)
    assert "Made with another model, kept but not used (re-enrol them on a device running this model): old." \
        in warnings and "2 message(s)" in warnings
