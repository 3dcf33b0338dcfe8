"""The listening daemon: decisions become events, bad utterances and stream errors are survived,
SIGTERM shuts it down cleanly."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from device.audio import load_audio, save_wav
from device.config import AudioConfig, Config
from device.daemon import Result, run_daemon
from device.sources import MicSource
from device.store import Store
from tests.helpers import REPO, ListSource, corpus_speakers, enroll_first_two, recognize_offline, require_module, vad_segments

GAP = np.zeros(16000, np.float32)


@pytest.fixture(scope="module")
def enrolled(tiny_bundle: Path, tiny_corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Config, dict]:
    """A store with two corpus speakers enrolled; returns (config, speaker -> files)."""
    speakers = corpus_speakers(tiny_corpus)
    cfg = Config(model=str(tiny_bundle), store=str(tmp_path_factory.mktemp("daemon") / "store.db"), policy="eer",
                 heartbeat_s=0.2).override(**{"enroll.consistency": -100.0, "session.gap_s": 0.5})  # one session a clip
    enroll_first_two(cfg, tiny_bundle, speakers)
    return cfg, speakers


def test_events_and_a_bad_utterance(enrolled: tuple[Config, dict]) -> None:
    cfg, speakers = enrolled
    clips = [load_audio(files[-1]) for files in speakers.values()][:4]
    bad = clips[1].copy()
    bad[len(bad) // 3: len(bad) // 3 + 800] = np.nan
    stream = np.concatenate([GAP, clips[0], GAP, bad, GAP, clips[2], GAP, clips[3], GAP])
    results: list[Result] = []
    with Store(cfg.store_path) as store:
        before = store.count_events()
    counters = run_daemon(cfg, ListSource(stream), threading.Event(), emit=results.append)
    assert counters.utterances == 4 and counters.errors == 1 and len(results) == 3
    with Store(cfg.store_path) as store:
        events = store.recent_events(10)
        assert store.count_events() - before == 3
        assert events[0].mfcc is not None and events[0].mfcc.shape[1] == 20
        assert store.status()["state"] == "stopped" and store.status()["errors"] == 1
    # Each decision is the one the Recognizer gives the same VAD segment offline (the NaN one errs).
    segments = vad_segments(cfg, stream)
    assert len(segments) == 4
    expected = [recognize_offline(cfg, segments[i], "eer") for i in (0, 2, 3)]
    assert [(r.kind, r.decision.label, r.decision.speaker) for r in results] == \
        [(e.kind, e.decision.label, e.decision.speaker) for e in expected]
    assert [r.decision.score for r in results] == pytest.approx([e.decision.score for e in expected], abs=1e-4)


class FlakyStream:
    """First open fails like an unplugged device; the next one plays `CLIP` through the callback."""

    opens = 0
    clip = np.zeros(0, np.int16)

    def __init__(self, callback, blocksize: int, **_: object) -> None:
        FlakyStream.opens += 1
        if FlakyStream.opens == 1:
            import sounddevice

            raise sounddevice.PortAudioError("Error opening InputStream: Device unavailable [PaErrorCode -9985]")
        self.callback, self.blocksize, self.device, self.active = callback, blocksize, 0, True

    def start(self) -> None:
        threading.Thread(target=self._play, daemon=True).start()

    def _play(self) -> None:
        status = type("Status", (), {"input_overflow": False})()
        for start in range(0, len(self.clip) - self.blocksize, self.blocksize):
            self.callback(self.clip[start:start + self.blocksize, None], self.blocksize, None, status)
        self.active = False

    def close(self, ignore_errors: bool = True) -> None:
        self.active = False


def test_daemon_survives_stream_errors(enrolled: tuple[Config, dict], monkeypatch: pytest.MonkeyPatch) -> None:
    sd = require_module("sounddevice")
    cfg, speakers = enrolled
    name = next(iter(speakers))
    audio = np.concatenate([GAP, load_audio(speakers[name][-1]), GAP])
    FlakyStream.clip = (audio * 32767).astype(np.int16)
    monkeypatch.setattr(sd, "InputStream", FlakyStream)
    monkeypatch.setattr(sd, "query_devices", lambda *a, **k: {"name": "flaky"})
    source = MicSource(AudioConfig(reopen_backoff_s=0.05))
    stop = threading.Event()
    results: list[Result] = []

    def emit(result: Result) -> None:
        results.append(result)
        stop.set()

    timer = threading.Timer(30, stop.set)
    timer.start()
    run_daemon(cfg, source, stop, emit=emit)
    timer.cancel()
    assert len(results) == 1 and source.stats.errors >= 1 and source.stats.opened >= 1


def test_sigterm_stops_cleanly(enrolled: tuple[Config, dict], tmp_path: Path) -> None:
    cfg, speakers = enrolled
    clips = [load_audio(files[-2]) for files in speakers.values()]
    wav = tmp_path / "talk.wav"
    save_wav(wav, np.concatenate([x for c in clips for x in (c, GAP)]))
    proc = subprocess.Popen([sys.executable, "-m", "device", "run", "--file", wav, "--realtime", "--json",
                             "--model", cfg.model, "--store", cfg.store, "--policy", "eer"],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first = json.loads(proc.stdout.readline())
        want = recognize_offline(cfg, vad_segments(cfg, load_audio(wav))[0], "eer")
        assert (first["kind"], first["decision"], first["speaker"]) == ("identify", want.decision.label, want.decision.speaker)
        assert first["score"] == pytest.approx(want.decision.score, abs=1e-3)
        start = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0, proc.stderr.read()[-2000:]
        assert time.monotonic() - start < 5
    finally:
        if proc.poll() is None:
            proc.kill()
    with Store(cfg.store_path) as store:
        status = store.status()
        assert status["state"] == "stopped" and status["pid"] == proc.pid and status["utterances"] >= 1
        assert status["runtime"].startswith(("tflite_runtime", "ai_edge_litert"))
