"""The SQLite store: permissions, schema versioning, profiles, events, status, export/import."""

from __future__ import annotations

import os
import sqlite3
import stat
import threading
from pathlib import Path

import numpy as np
import pytest

from device.heatmap import downsample_mfcc
from device.profile_export import export_profiles, import_profiles
from device.store import MIGRATIONS, SCHEMA_VERSION, Event, Sample, Speaker, Store, StoreError

SHA = "a" * 64


def speaker(name: str, dim: int = 8, seed: int = 0) -> Speaker:
    v = np.random.default_rng(seed).normal(size=dim).astype(np.float32)
    return Speaker(name, "tiny", SHA, v / np.linalg.norm(v), 2, 6.0, 0.9)


def samples(n: int = 2, dim: int = 8) -> list[Sample]:
    return [Sample(np.ones(dim, np.float32), 3.0, 2.5, 30.0, ["ok"]) for _ in range(n)]


def test_created_private_with_wal(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "dir" / "store.db"
    with Store(path) as store:
        store.save_speaker(speaker("ann"), samples())
        assert store.schema_version == SCHEMA_VERSION
        assert store._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    for extra in path.parent.glob("store.db-*"):
        assert stat.S_IMODE(extra.stat().st_mode) == 0o600


def test_future_schema_refused(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    Store(path).close()
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.close()
    with pytest.raises(StoreError, match=rf"store\.db: store schema version {SCHEMA_VERSION + 1} is newer"):
        Store(path)


def test_not_a_database(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    path.write_bytes(b"hello" * 100)
    with pytest.raises(StoreError, match="not a usable SQLite store"):
        Store(path)


def test_profiles_add_replace_delete(tmp_path: Path) -> None:
    with Store(tmp_path / "s.db") as store:
        store.save_speaker(speaker("ann"), samples(2))
        store.save_speaker(speaker("ann", seed=1), samples(3))
        assert len(store.samples("ann")) == 5
        store.save_speaker(speaker("ann", seed=2), samples(1), replace=True)
        assert len(store.samples("ann")) == 1
        np.testing.assert_allclose(store.profiles(SHA)["ann"], speaker("ann", seed=2).embedding)
        assert store.profiles("other") == {}
        store.save_speaker(speaker("bob"), samples())
        assert [s.name for s in store.list_speakers()] == ["ann", "bob"]
        assert store.delete_speaker("ann") and not store.delete_speaker("ann")
        assert store._db.execute("SELECT count(*) FROM samples").fetchone()[0] == 2  # cascade


def test_events_retention_and_polling(tmp_path: Path) -> None:
    with Store(tmp_path / "s.db") as store:
        store.set_setting("event_retention", 5)
        mfcc = np.random.default_rng(0).normal(size=(350, 20)).astype(np.float32)
        ids = [store.add_event(Event("identify", "ann", 0.5, 0.3, True, 3.0, mfcc=mfcc, snr_db=40.0)) for _ in range(8)]
        assert store.count_events() == 5
        newest = store.recent_events(limit=2)
        assert [e.id for e in newest] == ids[:-3:-1]
        assert newest[0].mfcc.shape == (100, 20) and newest[0].mfcc.dtype == np.float16
        assert [e.id for e in store.recent_events(since_id=ids[-2])] == [ids[-1]]


def test_downsample_keeps_short_matrices() -> None:
    x = np.ones((40, 20), np.float32)
    assert downsample_mfcc(x).shape == (40, 20)


def test_status_and_settings(tmp_path: Path) -> None:
    with Store(tmp_path / "s.db") as store:
        assert store.status()["heartbeat_age"] is None
        store.set_status({"pid": 42, "model": "tiny"})
        store.heartbeat({"device": "mic"})
        status = store.status()
        assert status["pid"] == 42 and status["device"] == "mic" and status["heartbeat_age"] < 5
        assert store.get_setting("policy", "far1") == "far1"
        store.set_setting("policy", "eer")
        assert store.get_setting("policy") == "eer"


def test_export_import_same_model_only(tmp_path: Path) -> None:
    out = tmp_path / "profiles.json"
    with Store(tmp_path / "a.db") as a:
        a.save_speaker(speaker("ann"), samples(2))
        assert export_profiles(a, out, "tiny", SHA) == 1
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    with Store(tmp_path / "b.db") as b:
        with pytest.raises(StoreError, match="cannot be used"):
            import_profiles(b, out, "other", "b" * 64)
        assert import_profiles(b, out, "tiny", SHA) == ["ann"]
        assert len(b.samples("ann")) == 2
        assert import_profiles(b, out, "tiny", SHA) == []  # existing names kept


def test_reader_never_sees_locked(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    Store(path).close()
    errors: list[Exception] = []
    done = threading.Event()

    def write() -> None:
        with Store(path) as w:
            for i in range(200):
                w.save_speaker(speaker(f"s{i % 5}", dim=64), samples(5, 64))
                w.add_event(Event("identify", None, 0.1, 0.2, False, 1.0))
        done.set()

    t = threading.Thread(target=write)
    t.start()
    with Store(path, readonly=True) as r:
        while not done.is_set():
            try:
                r.list_speakers()
                r.recent_events(10)
                r.status()
            except Exception as exc:  # noqa: BLE001 - any failure is the bug
                errors.append(exc)
    t.join()
    assert errors == []


def test_readonly_missing(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="no store here yet"):
        Store(tmp_path / "none.db", readonly=True)
    assert not os.path.exists(tmp_path / "none.db")


def test_downsample_averages_consecutive_frames() -> None:
    x = np.arange(350 * 20, dtype=np.float32).reshape(350, 20) / 1000
    got = downsample_mfcc(x)
    edges = np.linspace(0, 350, 101).astype(int)
    want = np.stack([x[a:b].mean(axis=0) for a, b in zip(edges[:-1], edges[1:])]).astype(np.float16)
    assert got.shape == (100, 20) and got.dtype == np.float16
    assert np.array_equal(got, want)


def test_a_session_is_one_event_updated_in_place(tmp_path: Path) -> None:
    with Store(tmp_path / "s.db") as store:
        store.set_setting("event_retention", 3)
        mfcc = np.zeros((50, 20), np.float32)
        first = store.add_event(Event("identify", "ann", 0.40, 0.5, False, 2.0, mfcc=mfcc, session="s1", decision="unsure",
                                      time=100.0))
        later = store.add_event(Event("identify", "ann", 0.62, 0.5, True, 3.5, mfcc=mfcc + 1, session="s1", utterances=2,
                                      time=104.0))
        assert later == first and store.count_events() == 1
        (event,) = store.recent_events()
        assert (event.decision, event.accepted, event.utterances, event.score, event.seconds, event.time) == (
            "accept", True, 2, 0.62, 3.5, 104.0)
        assert float(event.mfcc[0, 0]) == 1.0  # the latest utterance's MFCCs
        # decisions without a session insert as before, and retention counts events, not decisions
        ids = [store.add_event(Event("verify", "ann", 0.1, 0.5, False, 1.0, claim="ann")) for _ in range(3)]
        assert store.count_events() == 3 and [e.id for e in store.recent_events()] == ids[::-1]
        assert store.add_event(Event("identify", None, 0.1, 0.5, False, 1.0, session="s1")) > ids[-1]  # s1 was trimmed


def test_migration_keeps_events_and_derives_their_labels(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    previous = next(i for i, script in enumerate(MIGRATIONS) if "ADD COLUMN session" in script)  # before sessions
    with sqlite3.connect(path) as db:
        for script in MIGRATIONS[:previous]:
            db.executescript(script)
        db.executemany("INSERT INTO events (time, kind, claim, speaker, score, threshold, accepted, seconds) "
                       "VALUES (?, 'identify', NULL, ?, ?, 0.5, ?, 2.0)", [(1.0, "ann", 0.7, 1), (2.0, "bob", 0.2, 0)])
        db.execute(f"PRAGMA user_version = {previous}")
    with Store(path) as store:
        assert store.schema_version == SCHEMA_VERSION
        events = store.recent_events()
    assert [(e.speaker, e.accepted, e.decision, e.utterances, e.session) for e in events] == [
        ("bob", False, "reject", 1, None), ("ann", True, "accept", 1, None)]
