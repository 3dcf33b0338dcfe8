"""device/admin.py: scrypt-hashed admin password in the store, constant-time check, persistent throttle."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from device import admin
from device.store import Store
from tests.helpers import run


@pytest.fixture
def store(tmp_path: Path):
    with Store(tmp_path / "store.db") as s:
        yield s


def test_no_default_password(store: Store) -> None:
    assert not admin.has_password(store)
    check = admin.check_password(store, "anything-at-all")
    assert not check.ok and "no admin password" in check.message


def test_set_and_check(store: Store, tmp_path: Path) -> None:
    admin.set_password(store, "correct horse")
    record = store.get_setting(admin.PASSWORD_KEY)
    assert record["scheme"] == "scrypt" and "correct horse" not in str(record) and len(record["salt"]) == 32
    assert admin.check_password(store, "correct horse").ok
    assert not admin.check_password(store, "correct house").ok
    with Store(tmp_path / "store.db") as other:  # another process (the page) sees the same password
        assert admin.check_password(other, "correct horse").ok
    admin.set_password(store, "correct horse")
    assert store.get_setting(admin.PASSWORD_KEY)["salt"] != record["salt"]


def test_too_short_or_mismatched(store: Store) -> None:
    with pytest.raises(admin.AdminError, match="at least 8"):
        admin.set_password(store, "short")
    answers = iter(["long enough 1", "long enough 2"])
    with pytest.raises(admin.AdminError, match="differ"):
        admin.set_password_interactively(store, lambda _: next(answers))
    assert not admin.has_password(store)
    admin.set_password_interactively(store, lambda _: "long enough 1")
    assert admin.check_password(store, "long enough 1").ok


def test_wrong_attempts_are_throttled_and_persist(store: Store, tmp_path: Path) -> None:
    admin.set_password(store, "correct horse")
    t = 1_000_000.0
    for _ in range(admin.FREE_ATTEMPTS - 1):
        assert admin.check_password(store, "nope", now=t).wait_s == 0
    check = admin.check_password(store, "nope", now=t)
    assert not check.ok and check.wait_s == admin.BASE_DELAY_S
    refused = admin.check_password(store, "correct horse", now=t + 1)  # right, but inside the lockout
    assert not refused.ok and refused.wait_s == pytest.approx(1.0) and "try again" in refused.message
    with Store(tmp_path / "store.db") as reloaded:  # a page reload or new session does not reset it
        assert admin.lockout_remaining(reloaded, now=t + 1) == pytest.approx(1.0)
    assert admin.check_password(store, "nope", now=t + 3).wait_s == 2 * admin.BASE_DELAY_S
    assert admin.check_password(store, "correct horse", now=t + 3 + 2 * admin.BASE_DELAY_S).ok
    assert admin.lockout_remaining(store, now=t + 10) == 0
    assert admin.delay_after(100) == admin.MAX_DELAY_S


def test_cli_set_admin_password(tmp_path: Path) -> None:
    store_path = tmp_path / "s" / "store.db"
    cli = [sys.executable, "-m", "device", "set-admin-password", "--store", store_path, "--stdin"]
    proc = run(cli, input="short\n", timeout=60)
    assert proc.returncode == 2 and "at least 8 characters" in proc.stderr
    proc = run(cli, input="correct horse\n", timeout=60)
    assert proc.returncode == 0 and "admin password set" in proc.stdout, proc.stderr
    with Store(store_path) as store:
        assert admin.check_password(store, "correct horse").ok
