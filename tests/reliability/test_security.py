"""A locked-down device: verification lockout (persisted, configurable, used by the CLI and the
daemon), private files, no raw audio unless asked.

The status page being read-only without the admin password is tested in tests/app/test_admin.py
(no default password, persistent throttle) and tests/app/test_status_apptest.py (admin refusal).
"""

from __future__ import annotations

import json
import stat
import threading
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from device.audio import load_audio
from device.config import Config, ConfigError, LockoutConfig
from device.daemon import run_daemon
from device.lockout import LockedOut, Lockout, locked_speakers
from device.store import Store
from tests.helpers import DEVICE_PY, REPO, ListSource, corpus_speakers, run
from tests.reliability.helpers import enroll_cli, write_config

CFG = LockoutConfig(max_failures=3, window_s=60.0, cooldown_s=600.0)


@pytest.fixture
def store(tmp_path: Path):
    with Store(tmp_path / "store.db") as s:
        yield s


def test_lockout_after_failures_in_window(store: Store) -> None:
    lock = Lockout(store, CFG)
    for t in (0.0, 1.0):
        lock.record(["ann"], None, now=t)
    assert lock.allowed(["ann"], now=2.0) == ["ann"]
    lock.record(["ann"], None, now=2.0)
    with pytest.raises(LockedOut, match=r"ann: locked out after 3 failed verifications, try again in 59\d s"):
        lock.allowed(["ann"], now=3.0)
    assert locked_speakers(store, now=3.0) == {"ann": 599.0}
    assert lock.allowed(["ann"], now=603.0) == ["ann"]  # the cool-down ends


def test_failures_outside_the_window_do_not_count(store: Store) -> None:
    lock = Lockout(store, CFG)
    for t in (0.0, 100.0, 200.0, 300.0):
        lock.record(["ann"], None, now=t)
    assert locked_speakers(store, now=301.0) == {}


def test_success_clears_failures_and_other_speakers_unaffected(store: Store) -> None:
    lock = Lockout(store, CFG)
    for t in (0.0, 1.0):
        lock.record(["ann"], None, now=t)
    lock.record(["ann"], "ann", now=2.0)
    lock.record(["ann"], None, now=3.0)
    assert locked_speakers(store, now=4.0) == {}
    for t in (5.0, 6.0):
        lock.record(["ann"], None, now=t)
    assert lock.allowed(["ann", "bob"], now=7.0) == ["bob"]  # the daemon's multi-claim mode keeps bob


def test_lockout_survives_a_restart(tmp_path: Path) -> None:
    with Store(tmp_path / "s.db") as a:
        for t in (0.0, 1.0, 2.0):
            Lockout(a, CFG).record(["ann"], None, now=t)
    with Store(tmp_path / "s.db", readonly=True) as b:
        assert "ann" in locked_speakers(b, now=10.0)


@pytest.mark.parametrize("table", ["max_failures = 0", "window_s = 0", "cooldown_s = -1", "max_failures = 'x'",
                                   "attempts = 3"])
def test_lockout_config_checked(tmp_path: Path, table: str) -> None:
    path = tmp_path / "c.toml"
    path.write_text(f"[lockout]\n{table}\n")
    with pytest.raises(ConfigError, match="lockout"):
        Config.load(path)


def test_cli_and_daemon_refuse_a_locked_speaker(tiny_bundle: Path, tiny_corpus: Path, tmp_path: Path) -> None:
    files = corpus_speakers(tiny_corpus)
    (owner, own), (impostor, theirs) = list(files.items())[:2]
    store = tmp_path / "store.db"
    config = write_config(tmp_path / "device.toml", tiny_bundle, store,
                          "policy = 1e6\n[lockout]\nmax_failures = 2\nwindow_s = 600\ncooldown_s = 600")
    enroll_cli(config, owner, own[:3])
    verify = [DEVICE_PY, "-m", "device", "verify", "--config", config, "--claim", owner, "--file", theirs[0]]
    assert [run(verify).returncode for _ in range(2)] == [1, 1]  # rejected twice (an unreachable threshold)
    locked = run(verify)
    assert locked.returncode == 2 and f"{owner}: locked out after 2 failed verifications" in locked.stderr
    with Store(store, readonly=True) as s:
        assert list(locked_speakers(s)) == [owner]
        events = s.count_events()
    cfg = Config.load(config).override(claimed=[owner])
    counters = run_daemon(cfg, ListSource(load_audio(own[-1])), threading.Event())
    assert (counters.utterances, counters.errors) == (1, 1)  # refused, not scored
    with Store(store, readonly=True) as s:
        assert s.count_events() == events


def test_no_raw_audio_unless_asked(tiny_bundle: Path, tiny_corpus: Path, tmp_path: Path) -> None:
    files = corpus_speakers(tiny_corpus)
    name, own = next(iter(files.items()))
    config = write_config(tmp_path / "device.toml", tiny_bundle, tmp_path / "private" / "store.db")
    enroll_cli(config, name, own[:2])
    enroll_cli(config, "keeper", own[2:3], "--keep-audio")
    with Store(tmp_path / "private" / "store.db", readonly=True) as s:
        assert all(x.audio is None for x in s.samples(name))
        assert all(x.audio is not None for x in s.samples("keeper"))
        columns = {r[1] for r in s._db.execute("PRAGMA table_info(events)")}
    assert "audio" not in columns  # events keep a downsampled MFCC matrix only
    for path in (tmp_path / "private").iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert stat.S_IMODE((tmp_path / "private").stat().st_mode) == 0o700


def test_export_is_private_and_marked(tiny_bundle: Path, tmp_path: Path) -> None:
    """A profile export holds biometric templates: check it is not world-readable."""
    config = write_config(tmp_path / "device.toml", tiny_bundle, tmp_path / "store.db")
    out = tmp_path / "export.json"
    proc = run([DEVICE_PY, "-m", "device", "profiles", "export", out, "--config", config])
    assert proc.returncode == 0, proc.stderr
    assert json.loads(out.read_text())["speakers"] == []
    assert stat.S_IMODE(out.stat().st_mode) & 0o077 == 0



def test_status_page_shows_locked_speakers(tiny_bundle: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPEAKERID_STORE", str(tmp_path / "store.db"))
    monkeypatch.setenv("SPEAKERID_MODEL", str(tiny_bundle))
    monkeypatch.delenv("SPEAKERID_CONFIG", raising=False)
    with Store(tmp_path / "store.db") as s:
        for _ in range(CFG.max_failures):
            Lockout(s, CFG).record(["ann"], None)
    at = AppTest.from_file(str(REPO / "app" / "status.py"), default_timeout=60)
    at.run()
    assert not at.exception, at.exception
    assert any("Verification of ann is locked out" in w.value for w in at.warning)
