"""End to end: the real daemon (`python -m device run --file ... --realtime`) writes a store, the
real server (scripts/serve_status.sh) serves the page on 127.0.0.1, headless Debian Chromium looks.

Checks health "up", new events arriving without a reload, an upload decision, the loader's message
for a bad file, and admin actions refused until the admin password is given. Screenshots go to
build/artifacts/ (status-overview.png, status-tryit.png, status-admin.png)."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from playwright import sync_api

from device import admin
from device.audio import load_audio, save_wav
from device.config import Config
from device.store import Store
from tests.helpers import DEVICE_PY, REPO, corpus_speakers, recognize_offline, require_tool, run

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = REPO / "build" / "artifacts"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
PASSWORD = "correct horse battery"


@pytest.fixture(scope="module", autouse=True)
def chromium() -> None:
    """Debian's chromium (scripts/setup_apt.sh) and playwright (tests/requirements.txt)."""
    require_tool(str(CHROMIUM))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        assert proc.poll() is None, f"server exited: {proc.stdout.read() if proc.stdout else ''}"
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(url)


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


@pytest.fixture(scope="module")
def device(tiny_bundle: Path, tiny_corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """Two enrolled speakers, a daemon listening to a ~70 s file in real time, and the page's server."""
    root = tmp_path_factory.mktemp("device")
    store, config = root / "store" / "store.db", root / "device.toml"
    config.write_text("heartbeat_s = 1.0\n[enroll]\nconsistency = -100.0\n")  # the tiny model is barely trained
    common = ["--model", tiny_bundle, "--store", store, "--config", config]
    speakers = corpus_speakers(tiny_corpus)
    names = list(speakers)[:2]
    for name in names:
        proc = run([DEVICE_PY, "-m", "device", "enroll", name, "--files", *speakers[name][:4], *common], timeout=120)
        assert proc.returncode == 0, proc.stderr[-2000:]
    gap = np.zeros(16000, np.float32)
    clips = [load_audio(p) for p in [speakers[n][i] for i in (5, 6, 7) for n in names]]
    stream = root / "stream.wav"
    save_wav(stream, np.concatenate([np.concatenate([c, gap]) for c in clips * 6]))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    daemon = subprocess.Popen([str(DEVICE_PY), "-m", "device", "run", "--file", str(stream), "--realtime",
                               *map(str, common)], cwd=REPO, env=env, start_new_session=True,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    port = free_port()
    server = subprocess.Popen(["bash", str(REPO / "scripts" / "serve_status.sh"), "--http", "--address", "127.0.0.1", "--port",
                               str(port), *map(str, common)], cwd=REPO, env=env, start_new_session=True,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_http(f"http://127.0.0.1:{port}/_stcore/health", server)
        yield {"url": f"http://127.0.0.1:{port}/", "store": store, "model": tiny_bundle, "names": names,
               "sample": speakers[names[0]][7],
               "enroll": speakers[names[0]][:3]}
    finally:
        stop(daemon)
        stop(server)


@pytest.fixture(scope="module")
def browser() -> Iterator:
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser, tmp_path: Path) -> Iterator:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    pg = context.new_page()
    pg.set_default_timeout(30_000)
    yield pg
    context.close()


def snapshot(page, name: str) -> None:
    """Streamlit scrolls inside its own container, so a tall viewport is what captures the whole page."""
    page.set_viewport_size({"width": 1400, "height": 2800})
    page.wait_for_timeout(1500)  # let the charts redraw at the new size
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name))


def uploader(page, label: str):
    return page.locator('[data-testid="stFileUploader"]').filter(has_text=label).locator('input[type="file"]')


def test_health_and_live_events(device: dict, page) -> None:
    expect = sync_api.expect
    page.goto(device["url"])
    expect(page.locator('[data-testid="stMetric"]').filter(has_text="Daemon")).to_contain_text("up", timeout=60_000)
    stored = page.get_by_text(re.compile(r"\d+ decisions stored"))
    expect(stored).to_be_visible(timeout=60_000)
    first = stored.inner_text()
    expect(stored).not_to_have_text(first, timeout=60_000)  # a new decision arrived; nobody reloaded
    expect(page.get_by_text("Enrolled speakers")).to_be_visible()
    expect(page.get_by_text(re.compile("MFCCs of the last utterance"))).to_be_visible()
    snapshot(page, "status-overview.png")


def test_upload_gets_a_decision_and_bad_files_a_clear_message(device: dict, page) -> None:
    expect = sync_api.expect
    page.goto(device["url"])
    uploader(page, "A recording").set_input_files(str(device["sample"]))
    expect(page.get_by_text(device["sample"].name)).to_be_visible()
    page.get_by_role("button", name="Decide").click()
    # Anonymous: accept/reject and the amount of speech, no score (scores are for the admin).
    expect(page.get_by_text(re.compile(r"\d+\.\d s of speech in \d+\.\d s"))).to_be_visible(timeout=60_000)
    expect(page.get_by_text(re.compile(r"score [+-]\d"))).to_have_count(0)
    # The page decides as the device's Recognizer does on the same file and store.
    cfg = Config(model=str(device["model"]), store=str(device["store"]))
    want = recognize_offline(cfg, load_audio(device["sample"]), cfg.policy).decision
    expect(page.get_by_text(re.compile(rf"^{want.label.upper()} — ")).first).to_be_visible()
    snapshot(page, "status-tryit.png")
    uploader(page, "A recording").set_input_files({"name": "bad.wav", "mimeType": "audio/wav",
                                                   "buffer": b"this is not audio at all"})
    expect(page.get_by_text("bad.wav", exact=True)).to_be_visible()
    page.wait_for_timeout(500)  # the upload's rerun redraws the Decide button
    page.get_by_role("button", name="Decide").click()
    expect(page.get_by_text("bad.wav: not a readable audio file")).to_be_visible()


def test_admin_refused_without_password_then_works(device: dict, page) -> None:
    expect = sync_api.expect
    page.goto(device["url"])
    expect(page.get_by_text("no admin password is set on this device")).to_be_visible()
    expect(page.get_by_role("button", name="Delete speaker")).to_have_count(0)
    with Store(device["store"]) as store:
        admin.set_password(store, PASSWORD)
    page.reload()
    password = page.get_by_label("Admin password")
    password.fill("not the password")
    password.press("Enter")
    page.get_by_role("button", name="Unlock").click()
    expect(page.get_by_text("wrong password")).to_be_visible()
    expect(page.get_by_role("button", name="Delete speaker")).to_have_count(0)
    password.fill(PASSWORD)
    password.press("Enter")
    page.get_by_role("button", name="Unlock").click()
    expect(page.get_by_text("Enroll a speaker")).to_be_visible()
    victim = device["names"][0]  # the preselected speaker
    expect(page.get_by_role("combobox", name="Speaker", exact=True)).to_have_value(victim)
    page.get_by_role("button", name="Delete speaker").click()
    expect(page.get_by_text(f"deleted {victim}")).to_be_visible()
    with Store(device["store"]) as store:
        assert [s.name for s in store.list_speakers()] == device["names"][1:]

    page.get_by_label("Name", exact=True).fill("newcomer")
    page.get_by_label("Name", exact=True).press("Enter")
    uploader(page, "Samples").set_input_files([str(p) for p in device["enroll"]])
    expect(page.get_by_text(device["enroll"][-1].name, exact=True)).to_be_visible()
    page.wait_for_timeout(500)
    page.get_by_role("button", name="Enroll", exact=True).click()
    expect(page.get_by_text(re.compile(r"newcomer: profile saved, 3 samples"))).to_be_visible(timeout=60_000)
    expect(page.get_by_text(re.compile(rf"\[\s*\d+%\] {device['enroll'][0].name}: ok"))).to_be_visible()
    with Store(device["store"]) as store:
        assert store.get_speaker("newcomer").n_samples == 3
    snapshot(page, "status-admin.png")
