"""The Assist proxy with the real `wyoming` library on loopback: a client that speaks as Home
Assistant does, `python -m device assist` as a real process, and an upstream ASR server built on the
same library (scripts/bench/device_side/assist_latency.py: UpstreamASR) that answers with a fixed
transcript and keeps the audio it got. Voices are the demo's never-heard people: alan and mikhail
enrolled, victoria a stranger."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from wyoming.asr import Transcript
from wyoming.client import AsyncClient
from wyoming.error import Error
from wyoming.info import Describe, Info

from device.assist import judge, without
from device.audio import load_audio
from device.config import Config
from device.recognizer import Recognizer
from device.store import Store
from scripts.bench.device_side.assist_latency import TRANSCRIPT, UpstreamASR, send_command
from tests.device.broker import free_port
from tests.helpers import DEVICE_PY, REPO, demo_household, run

SHIPPED = REPO / "models" / "default"
CLIPS = REPO / "device" / "demo_clips"
GAP = np.zeros(16000, np.float32)


@pytest.fixture(scope="module")
def household(tmp_path_factory: pytest.TempPathFactory) -> Config:
    return demo_household(tmp_path_factory.mktemp("assist") / "store.db")


class Upstream:
    """UpstreamASR served from its own event loop in a thread, so the test's client can block."""

    def __init__(self, port: int) -> None:
        self.asr, self.uri = UpstreamASR(), f"tcp://127.0.0.1:{port}"
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.server = asyncio.run_coroutine_threadsafe(self.asr.start(self.uri), self.loop).result(10)

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.server.stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


def wait_for_port(port: int, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()[1][-2000:]
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise AssertionError(f"nothing listens on {port} after {timeout} s")


@pytest.fixture
def proxy(household: Config, tmp_path: Path) -> Iterator[tuple[str, int]]:
    """`python -m device assist --tag` on a free port, its upstream on another (not started here)."""
    listen, upstream = free_port(), free_port()
    proc = subprocess.Popen([DEVICE_PY, "-m", "device", "assist", "--listen", f"tcp://127.0.0.1:{listen}",
                             "--upstream", f"tcp://127.0.0.1:{upstream}", "--tag", "--model", SHIPPED,
                             "--store", household.store, "--policy", "far1", "--json"],
                            cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        wait_for_port(listen, proc)
        yield f"tcp://127.0.0.1:{listen}", upstream
    finally:
        proc.terminate()
        assert proc.wait(timeout=20) == 0  # SIGTERM: a clean stop


def command(uri: str, audio: np.ndarray):
    return asyncio.run(send_command(uri, audio))[0]


def offline(cfg: Config, audio: np.ndarray):
    """The proxy's verdict on `audio`, judged in this process with the same store and model."""
    with Store(cfg.store_path) as store:
        return judge(Recognizer(cfg, store), cfg, audio)


def pcm16(audio: np.ndarray) -> bytes:
    return np.clip(np.round(audio * 32768), -32768, 32767).astype("<i2").tobytes()


def test_an_enrolled_voice_is_tagged_and_a_stranger_gets_an_empty_transcript(household, proxy) -> None:
    uri, port = proxy
    upstream = Upstream(port)
    try:
        alan = np.concatenate([GAP, load_audio(CLIPS / "alan-test-1.flac"), GAP])
        verdict = offline(household, alan)
        assert verdict.accepted and verdict.result.decision.speaker == "alan" and verdict.cut == []
        reply = command(uri, alan)
        assert Transcript.from_event(reply).text == f"[alan] {TRANSCRIPT}"
        assert bytes(upstream.asr.commands[-1].pcm) == pcm16(alan)  # one voice: forwarded whole

        victoria = np.concatenate([GAP, load_audio(CLIPS / "victoria-test-2.flac"), GAP])
        assert not offline(household, victoria).accepted
        assert Transcript.from_event(command(uri, victoria)).text == ""
        assert len(upstream.asr.commands) == 1  # the stranger's command never reached the ASR

        info = asyncio.run(describe(uri))
        assert [p.name for p in info.asr] == ["speakerid + fixed-asr"] and info.asr[0].models[0].languages == ["en"]
    finally:
        upstream.stop()


async def describe(uri: str) -> Info:
    async with AsyncClient.from_uri(uri, connect_timeout=10, read_timeout=30) as client:
        await client.write_event(Describe().event())
        return Info.from_event(await client.read_event())


def test_a_second_voice_is_cut_before_the_upstream(household, proxy) -> None:
    uri, port = proxy
    upstream = Upstream(port)
    try:
        alan, victoria = load_audio(CLIPS / "alan-test-1.flac"), load_audio(CLIPS / "victoria-test-2.flac")
        audio = np.concatenate([GAP, alan, GAP, victoria, GAP])
        verdict = offline(household, audio)
        assert verdict.result.decision.speaker == "alan" and verdict.accepted
        # the cut is victoria's region: after alan's clip ends, most of hers
        assert all(start >= len(GAP) + len(alan) for start, _ in verdict.cut)
        assert sum(end - start for start, end in verdict.cut) >= 0.8 * len(victoria)
        reply = command(uri, audio)
        assert Transcript.from_event(reply).text == f"[alan] {TRANSCRIPT}"
        got = bytes(upstream.asr.commands[-1].pcm)
        assert got == without(pcm16(audio), verdict.cut) and len(got) < len(pcm16(audio)) - 2 * 0.8 * len(victoria)
    finally:
        upstream.stop()


def test_the_speaker_back_after_another_voice_is_kept(household) -> None:
    alan1, alan2 = load_audio(CLIPS / "alan-test-1.flac"), load_audio(CLIPS / "alan-test-2.flac")
    victoria = load_audio(CLIPS / "victoria-test-2.flac")
    audio = np.concatenate([GAP, alan1, GAP, victoria, GAP, alan2, GAP])
    verdict = offline(household, audio)
    assert verdict.accepted and verdict.result.decision.speaker == "alan"
    victoria_at = 2 * len(GAP) + len(alan1)
    assert verdict.cut and all(victoria_at - 16000 <= s and e <= victoria_at + len(victoria) + 16000
                               for s, e in verdict.cut)  # only around victoria's clip


def test_an_upstream_that_is_down_gives_an_error_and_the_proxy_keeps_serving(household, proxy) -> None:
    uri, port = proxy
    alan = np.concatenate([GAP, load_audio(CLIPS / "alan-test-1.flac"), GAP])
    error = Error.from_event(command(uri, alan))
    assert error.code == "upstream-unavailable" and f":{port}" in error.text
    upstream = Upstream(port)  # the ASR comes back: the same proxy process serves again
    try:
        assert Transcript.from_event(command(uri, alan)).text == f"[alan] {TRANSCRIPT}"
    finally:
        upstream.stop()


def test_enrolling_through_the_satellite(tmp_path) -> None:
    """`assist-enroll` takes the next commands as enrolment samples, answers with the feedback, then
    stops; the profile it saved is the one `enroll --files` saves from the same recordings."""
    store, port = tmp_path / "store.db", free_port()
    proc = subprocess.Popen([DEVICE_PY, "-m", "device", "assist-enroll", "lyubov", "--listen", f"tcp://127.0.0.1:{port}",
                             "--samples", "5", "--model", SHIPPED, "--store", store, "--json"],
                            cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    wait_for_port(port, proc)
    clips = sorted(CLIPS.glob("lyubov-enroll-*"))
    answers = [Transcript.from_event(command(f"tcp://127.0.0.1:{port}", load_audio(c))).text for c in clips]
    assert answers == [f"ok ({i} of 5)" for i in range(1, 6)]
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err[-2000:]
    assert [json.loads(line)["accepted"] for line in out.splitlines()] == [True] * 5

    by_cli = tmp_path / "cli.db"
    assert run([DEVICE_PY, "-m", "device", "enroll", "lyubov", "--files", *clips, "--model", SHIPPED,
                "--store", by_cli]).returncode == 0
    decisions = [json.loads(run([DEVICE_PY, "-m", "device", "identify", "--file", CLIPS / "lyubov-test-2.flac",
                                 "--model", SHIPPED, "--store", s, "--json"]).stdout) for s in (store, by_cli)]
    assert decisions[0]["decision"] == "accept" and decisions[0]["speaker"] == "lyubov"
    assert decisions[0]["score"] == pytest.approx(decisions[1]["score"], abs=1e-4)


def test_config_and_command_line_refusals(tmp_path) -> None:
    toml = tmp_path / "c.toml"
    toml.write_text('[assist]\nunverified = "maybe"\n')
    proc = run([DEVICE_PY, "-m", "device", "assist", "--config", toml])
    assert proc.returncode == 2 and "assist.unverified must be one of empty, forward" in proc.stderr
    proc = run([DEVICE_PY, "-m", "device", "assist", "--upstream", "http://x:1", "--store", tmp_path / "s.db"])
    assert proc.returncode == 2 and "assist.upstream must be a tcp://HOST:PORT or unix://PATH URI" in proc.stderr
    proc = run([DEVICE_PY, "-m", "device", "assist", "--store", tmp_path / "s.db"])
    assert proc.returncode == 2 and "no upstream ASR service" in proc.stderr
    proc = run([DEVICE_PY, "-m", "device", "assist", "--upstream", "tcp://127.0.0.1:9", "--store", tmp_path / "s.db"])
    assert proc.returncode == 2 and "nobody is enrolled" in proc.stderr
