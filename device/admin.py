"""The admin password that guards the status page's write actions (enroll, delete, policy, import).

There is no default password: until `set_password` has run, `has_password` is False and admin
actions stay off. The password is kept as an scrypt hash with a random salt in the store's settings
table, never in clear. Wrong attempts are throttled with an exponential delay whose counters also
live in the store (device/throttle.py), so reloading the page or opening a new browser session
does not reset them.
"""

from __future__ import annotations

import getpass
import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from device.store import Store
from device.throttle import Throttle

PASSWORD_KEY = "admin_password"
FAILURES_KEY = "admin_failures"
MIN_LENGTH = 8
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1  # 16 MiB, well under a second on a Raspberry Pi 4
FREE_ATTEMPTS = 3  # wrong attempts allowed before any delay
BASE_DELAY_S = 2.0  # then 2, 4, 8, ... seconds between attempts
MAX_DELAY_S = 300.0
LOGIN = Throttle(FAILURES_KEY, FREE_ATTEMPTS, BASE_DELAY_S, MAX_DELAY_S)  # wrong passwords, until a right one


class AdminError(ValueError):
    """A password that cannot be set (too short, or the confirmation differs)."""


@dataclass
class Check:
    ok: bool
    wait_s: float = 0.0  # > 0: refused without checking, try again after this long
    message: str = ""


def _hash(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(password.encode("utf-8"), salt=salt, n=n, r=r, p=p, dklen=32)


def has_password(store: Store) -> bool:
    return store.get_setting(PASSWORD_KEY) is not None


def set_password(store: Store, password: str) -> None:
    """Hash and store a new admin password; this also clears the wrong-attempt counters."""
    if len(password) < MIN_LENGTH:
        raise AdminError(f"the admin password needs at least {MIN_LENGTH} characters")
    salt = secrets.token_bytes(16)
    store.set_setting(PASSWORD_KEY, {"scheme": "scrypt", "n": SCRYPT_N, "r": SCRYPT_R, "p": SCRYPT_P,
                                     "salt": salt.hex(), "hash": _hash(password, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P).hex()})
    LOGIN.clear(store)


def delay_after(failures: int) -> float:
    """Seconds to wait after `failures` consecutive wrong attempts."""
    return LOGIN.delay_after(failures)


def lockout_remaining(store: Store, now: float | None = None) -> float:
    """Seconds until the next attempt will be checked (0 = now)."""
    return LOGIN.remaining(store, now)


def check_password(store: Store, password: str, now: float | None = None) -> Check:
    """Constant-time comparison against the stored hash, refused while a lockout is running."""
    record = store.get_setting(PASSWORD_KEY)
    if record is None:
        return Check(False, message="no admin password is set on this device")
    now = time.time() if now is None else now
    wait = lockout_remaining(store, now)
    if wait > 0:
        return Check(False, wait, f"too many wrong passwords; try again in {wait:.0f} s")
    digest = _hash(password, bytes.fromhex(record["salt"]), record["n"], record["r"], record["p"])
    if hmac.compare_digest(digest, bytes.fromhex(record["hash"])):
        LOGIN.clear(store)
        return Check(True)
    wait = LOGIN.record(store, now)
    return Check(False, wait, "wrong password" + (f"; next attempt in {wait:.0f} s" if wait else ""))


def set_password_interactively(store: Store, prompt: Callable[[str], str] = getpass.getpass) -> None:
    """What `python -m device set-admin-password` runs: ask twice (without echo), then store the hash."""
    password = prompt("New admin password: ")
    if prompt("Repeat it: ") != password:
        raise AdminError("the two passwords differ; nothing changed")
    set_password(store, password)
