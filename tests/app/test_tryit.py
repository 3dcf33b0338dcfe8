"""What an anonymous visitor of the page learns, through Streamlit's AppTest with real uploads
decided by the real Recognizer (shipped model, held-out RHVoice voices) on a real store: Try-it
gives accept/reject only, persistently throttled, and can never cause a lockout; the live
dashboard shows the daemon's decisions without scores or the closest name of a rejection; the
admin sees scores and names and its rejected claims count."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from app.tryit import ANONYMOUS
from device import admin
from device.audio import load_audio
from device.config import DEFAULT_MODEL, Config
from device.daemon import run_daemon
from device.embedder import Embedder
from device.enroll import Enroller, enroll_samples
from device.lockout import SETTING, locked_speakers
from device.store import Store
from tests.helpers import REPO, ListSource
from tests.voices import assert_held_out, render

APP = str(REPO / "app" / "status.py")
MODEL = REPO / DEFAULT_MODEL
PEOPLE = {"ann": "lyubov", "bob": "alan"}  # enrolled name -> held-out voice
STRANGERS = ["victoria", "mikhail"]  # never enrolled
PASSWORD = "correct horse battery"
UNREACHABLE = "1000000.0"  # a threshold policy that rejects everything


@pytest.fixture(scope="module")
def voices(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[Path]]:
    assert_held_out(MODEL, REPO, [*PEOPLE.values(), *STRANGERS])
    root = tmp_path_factory.mktemp("tryit-voices")
    people = {name: render(voice, root / voice, 5, seed=21) for name, voice in PEOPLE.items()}
    return {**people, **{voice: render(voice, root / voice, 1, seed=21) for voice in STRANGERS}}


@pytest.fixture
def store(tmp_path: Path, voices: dict[str, list[Path]], monkeypatch: pytest.MonkeyPatch):
    """ann and bob enrolled from four recordings each; the page pointed at the store, with a
    2-failure verification lockout."""
    config = tmp_path / "device.toml"
    config.write_text("[lockout]\nmax_failures = 2\nwindow_s = 600\ncooldown_s = 600\n")
    monkeypatch.setenv("SPEAKERID_STORE", str(tmp_path / "store.db"))
    monkeypatch.setenv("SPEAKERID_MODEL", str(MODEL))
    monkeypatch.setenv("SPEAKERID_CONFIG", str(config))
    cfg = Config.load(config).override(model=str(MODEL), store=str(tmp_path / "store.db"))
    embedder = Embedder(MODEL)
    with Store(cfg.store_path) as s:
        for name, files in voices.items():
            if name not in PEOPLE:
                continue
            enroller = Enroller.for_store(s, embedder, cfg, name)
            enroll_samples(enroller, s, ((p.name, load_audio(p)) for p in files[:4]))
        yield s


def page() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    assert not at.exception, at.exception
    return at


def decide(at: AppTest, path: Path, claim: str | None = None) -> AppTest:
    """Upload `path` to Try-it (verify `claim`, or identify) and press Decide."""
    at.radio(key="try_mode").set_value("verify" if claim else "identify").run()
    if claim:
        at.selectbox(key="try_claim").set_value(claim).run()
    at.file_uploader(key="try_file").upload(path.name, path.read_bytes(), "audio/wav").run()
    at.button(key="try_go").click().run()
    assert not at.exception, at.exception
    return at


def answer(at: AppTest) -> str:
    """Everything Try-it said: its success/warning/error boxes and its text lines."""
    boxes = [e.value for e in (*at.success, *at.warning, *at.error) if "locked out after repeated" not in e.value]
    return "\n".join(boxes + [m.value for m in at.markdown])


def test_anonymous_gets_accept_or_reject_only(store: Store, voices: dict[str, list[Path]]) -> None:
    at = decide(page(), voices["ann"][4])
    said = answer(at)
    assert "**ACCEPT** — an enrolled speaker" in said and "s of speech in" in said
    assert "score" not in said and "threshold" not in said and "ann" not in said and "bob" not in said
    at = decide(at, voices["bob"][4], claim="ann")
    said = answer(at)
    assert "**REJECT** — not recognised as the claimed speaker" in said and "score" not in said
    assert ANONYMOUS.count(store) == 2


def test_anonymous_tries_are_throttled_and_never_lock_anyone_out(store: Store, voices: dict[str, list[Path]]) -> None:
    store.set_setting("policy", UNREACHABLE)
    at = page()
    for i in range(ANONYMOUS.free):  # more rejected claims than the lockout allows (2)
        at = decide(at, voices["bob"][i], claim="ann")
        assert "**REJECT**" in answer(at)
    assert locked_speakers(store) == {} and store.get_setting(SETTING, {}) == {}
    assert ANONYMOUS.count(store) == ANONYMOUS.free
    store.set_setting(ANONYMOUS.key, {"count": 8, "last": time.time()})  # as if five more came just now: 64 s
    at = decide(at, voices["ann"][4], claim="ann")
    said = answer(at)
    assert "Too many tries: the next one is answered in 6" in said and "ACCEPT" not in said and "REJECT" not in said
    fresh = decide(page(), voices["ann"][4])  # a new browser session is throttled all the same
    assert "Too many tries" in answer(fresh)
    assert ANONYMOUS.count(store) == 8  # refused tries are not answered, so not counted either


def test_admin_sees_scores_and_names_and_its_claims_count(store: Store, voices: dict[str, list[Path]]) -> None:
    admin.set_password(store, PASSWORD)
    at = page()
    at.text_input(key="admin_password").input(PASSWORD)
    at.button(key="admin_unlock").click().run()
    at = decide(at, voices["ann"][4])
    said = answer(at)
    assert "**ACCEPT** — ann" in said and "score +" in said and "against threshold" in said
    store.set_setting("policy", UNREACHABLE)
    at = decide(at, voices["bob"][4], claim="ann")
    assert "**REJECT** — ann" in answer(at)
    assert len(store.get_setting(SETTING)["ann"]["failures"]) == 1  # an admin's claim is a claim
    at = decide(at, voices["bob"][3], claim="ann")
    assert list(locked_speakers(store)) == ["ann"]
    at = decide(at, voices["ann"][4], claim="ann")
    assert "ann: locked out after 2 failed verifications" in answer(at)
    assert ANONYMOUS.count(store) == 0  # the admin is not throttled


def test_dashboard_shows_decisions_not_scores_to_anonymous(store: Store, voices: dict[str, list[Path]]) -> None:
    # every recording its own session, as each is one person (one 8 s session would fuse them)
    cfg = Config(model=str(MODEL), store=str(store.path), heartbeat_s=0.2).override(**{"session.gap_s": 0.5})
    gap = np.zeros(16000, np.float32)
    heard = [voices["bob"][4], voices["victoria"][0], voices["ann"][4], voices["mikhail"][0]]
    results: list = []
    run_daemon(cfg, ListSource(np.concatenate([gap] + [np.concatenate([load_audio(p), gap]) for p in heard])),
               threading.Event(), emit=results.append)
    assert [r.decision.accepted for r in results] == [True, False, True, False]  # two people, two strangers
    closest = [r.decision.speaker for r in results]
    at = page()
    events = at.dataframe[0].value
    # newest first; the table shows each label with its icon (app/tables.py SHOWN), spelled out here
    assert list(events["decision"]) == ["⛔ reject", "✅ accept", "⛔ reject", "✅ accept"]
    assert list(events["best match"]) == ["–", "ann", "–", "bob"]  # no closest name for a rejection
    assert not {"score", "threshold", "margin"} & set(events.columns)
    assert len(at.get("vega_lite_chart")) == 1  # the MFCC heatmap; no score timeline
    assert "scores are shown to the admin" in " ".join(c.value for c in at.caption)
    admin.set_password(store, PASSWORD)
    at.run()
    at.text_input(key="admin_password").input(PASSWORD)
    at.button(key="admin_unlock").click().run()
    events = at.dataframe[0].value
    assert list(events["best match"]) == closest[::-1] and "score" in events.columns
    assert events["score"].tolist() == [round(r.decision.score, 3) for r in results[::-1]]
    assert len(at.get("vega_lite_chart")) == 2
