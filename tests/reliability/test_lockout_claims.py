"""The verification lockout counts claims, not sounds (docs/RELIABILITY.md, "Lockout counts claims,
not sounds"): a television talking next to a daemon in verify mode cannot lock the owner out, while
deliberate claims (`python -m device verify --claim`) still do.

Real audio (held-out RHVoice voices, tests/voices.py), the shipped model, the real daemon loop
(`run_daemon` with the VAD segmenter) and the real CLI on one SQLite store.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from device.audio import load_audio
from device.config import DEFAULT_MODEL, Config
from device.daemon import run_daemon
from device.lockout import SETTING, locked_speakers
from device.recognizer import Result
from device.store import Store
from tests.helpers import DEVICE_PY, REPO, ListSource, run
from tests.voices import assert_held_out, render

OWNER = "alan"
TELEVISION = ["lyubov", "mikhail", "victoria", "natan"]  # voices the daemon hears but nobody claims anything with
MAX_FAILURES = 3
GAP = np.zeros(16000, np.float32)


@pytest.fixture(scope="module")
def device(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The owner enrolled from four recordings; a config verifying the owner with a 3-failure lockout."""
    assert_held_out(REPO / DEFAULT_MODEL, REPO, [OWNER, *TELEVISION])
    root = tmp_path_factory.mktemp("lockout")
    owner = render(OWNER, root / OWNER, 6, seed=5)
    tv = [p for voice in TELEVISION for p in render(voice, root / voice, 2, seed=5)]
    config = root / "device.toml"
    config.write_text(f'model = "{REPO / DEFAULT_MODEL}"\nstore = "{root / "store.db"}"\nclaimed = ["{OWNER}"]\n'
                      f"[lockout]\nmax_failures = {MAX_FAILURES}\nwindow_s = 600\ncooldown_s = 600\n"
                      "[session]\ngap_s = 0.5\n")  # every recording its own session, as each is one person
    proc = run([DEVICE_PY, "-m", "device", "enroll", OWNER, "--files", *owner[:4], "--config", config], timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return {"config": config, "store": root / "store.db", "owner": owner[4:], "tv": tv}


def listen(cfg: Config, files: list[Path]) -> tuple[list[Result], int]:
    """The daemon hears `files` one after another (a second of silence between): results, errors."""
    stream = np.concatenate([GAP] + [np.concatenate([load_audio(p), GAP]) for p in files])
    results: list[Result] = []
    counters = run_daemon(cfg, ListSource(stream), threading.Event(), emit=results.append)
    return results, counters.errors


def test_ambient_rejections_never_lock_the_owner_out(device: dict) -> None:
    cfg = Config.load(device["config"])
    results, errors = listen(cfg, device["tv"] + device["owner"][:1])
    assert errors == 0 and len(results) == len(device["tv"]) + 1
    tv, owner = results[:-1], results[-1]
    assert all(r.kind == "verify" and r.claim == OWNER and not r.attempt for r in results)
    rejected = sum(not r.decision.accepted for r in tv)
    assert rejected >= 2 * MAX_FAILURES  # counted like claims, these would have locked the owner out twice over
    assert owner.decision.accepted, owner.to_dict()  # the owner, right after the television, still gets in
    with Store(device["store"], readonly=True) as s:
        assert s.get_setting(SETTING, {}) == {} and locked_speakers(s) == {}
        assert s.count_events() == len(results)  # every ambient decision is still on record


def test_deliberate_claims_still_lock_and_the_daemon_honours_it(device: dict) -> None:
    verify = [DEVICE_PY, "-m", "device", "verify", "--config", device["config"], "--claim", OWNER, "--json"]
    codes = [run([*verify, "--file", path], timeout=120).returncode for path in device["tv"][:MAX_FAILURES]]
    assert codes == [1] * MAX_FAILURES  # someone else's voice, claimed as the owner's, three times
    locked = run([*verify, "--file", device["owner"][1]], timeout=120)
    assert locked.returncode == 2 and f"{OWNER}: locked out after {MAX_FAILURES} failed verifications" in locked.stderr
    with Store(device["store"], readonly=True) as s:
        assert list(locked_speakers(s)) == [OWNER]
        state = s.get_setting(SETTING)
    results, errors = listen(Config.load(device["config"]), device["owner"][1:2])
    assert (results, errors) == ([], 1)  # during the cool-down the daemon refuses the claim without scoring it
    with Store(device["store"], readonly=True) as s:
        assert s.get_setting(SETTING) == state  # and neither extends nor clears the lockout
