"""Audio sources: file streaming/pacing, and a real PortAudio stream from a private ALSA file pcm."""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from device.audio import save_wav
from device.config import AudioConfig
from device.sources import FileSource, MicSource, device_arg
from tests.audio_env import FILE_PCM, alsa_file_env
from tests.helpers import require_module, run

RECORD = """
import sys, threading, numpy as np
from device.config import AudioConfig
from device.sources import MicSource
want = int(sys.argv[2]); stop = threading.Event(); got = []
src = MicSource(AudioConfig(device=sys.argv[1], block_ms=30, queue_seconds=600))
for block in src.blocks(stop):
    got.append(block)
    if sum(map(len, got)) >= want:
        stop.set()
np.save(sys.argv[3], np.stack(got))
print(src.stats)
"""


def test_file_source_blocks_match_file(tmp_path: Path) -> None:
    audio = np.random.default_rng(0).uniform(-0.5, 0.5, 16000).astype(np.float32)
    save_wav(tmp_path / "a.wav", audio)
    blocks = list(FileSource(tmp_path / "a.wav", block_ms=30).blocks(threading.Event()))
    assert all(len(b) == 480 for b in blocks[:-1])
    np.testing.assert_allclose(np.concatenate(blocks), audio, atol=1 / 32768)


def test_file_source_resamples_other_rates(tmp_path: Path) -> None:
    save_wav(tmp_path / "a.wav", np.zeros(8000, np.float32) + 0.1, sr=8000)
    assert sum(map(len, FileSource(tmp_path / "a.wav").blocks(threading.Event()))) == 16000


def test_file_source_realtime_pacing(tmp_path: Path) -> None:
    save_wav(tmp_path / "a.wav", np.zeros(8000, np.float32) + 0.1)
    start = time.monotonic()
    list(FileSource(tmp_path / "a.wav", realtime=True).blocks(threading.Event()))
    assert 0.4 < time.monotonic() - start < 1.0


def test_device_arg() -> None:
    assert device_arg("") is None and device_arg("3") == 3 and device_arg("USB") == "USB"


def test_mic_source_exact_samples_through_portaudio(tmp_path: Path) -> None:
    """Every delivered block is bit-exact and in order. The file pcm is unpaced, so a starved reader
    can lose blocks to the ring buffer (counted in stats); without drops the stream is gapless."""
    samples = np.random.default_rng(1).integers(-20000, 20000, 16000 * 3, dtype=np.int16)
    env = alsa_file_env(tmp_path / "home", samples)
    out = tmp_path / "got.npy"
    proc = run([sys.executable, "-c", RECORD, FILE_PCM, 16000 * 2, out], env=env, timeout=60)
    assert proc.returncode == 0, proc.stderr[-2000:]
    blocks = np.round(np.load(out) * 32768).astype(np.int16)
    where = {samples[i:i + 480].tobytes(): i // 480 for i in range(0, len(samples) - 479, 480)}
    positions = [where.get(b.tobytes(), -1) for b in blocks]
    assert positions[0] == 0 and -1 not in positions and positions == sorted(set(positions))
    assert "opened=1" in proc.stdout and "errors=0" in proc.stdout
    if "dropped_blocks=0" in proc.stdout:
        assert positions == list(range(len(positions)))


class FlakyStream:
    """Stands in for sounddevice.InputStream: the first open fails, later ones deliver one block."""

    opens = 0

    def __init__(self, callback, blocksize: int, **_: object) -> None:
        FlakyStream.opens += 1
        if FlakyStream.opens == 1:
            import sounddevice

            raise sounddevice.PortAudioError("Device unavailable")
        self.callback, self.blocksize, self.device, self.active = callback, blocksize, 0, True

    def start(self) -> None:
        status = type("S", (), {"input_overflow": False})()
        self.callback(np.full((self.blocksize, 1), 1000, np.int16), self.blocksize, None, status)
        self.active = False  # then the "device vanishes"

    def close(self, ignore_errors: bool = True) -> None:
        pass


def test_mic_source_survives_open_failure_and_dead_stream(monkeypatch: pytest.MonkeyPatch) -> None:
    sd = require_module("sounddevice")
    monkeypatch.setattr(sd, "InputStream", FlakyStream)
    monkeypatch.setattr(sd, "query_devices", lambda *a, **k: {"name": "fake"})
    src = MicSource(AudioConfig(reopen_backoff_s=0.05))
    stop = threading.Event()
    got = []
    for block in src.blocks(stop):
        got.append(block)
        if len(got) == 2:
            stop.set()
    assert len(got) == 2 and got[0][0] == pytest.approx(1000 / 32768)
    assert src.stats.opened == 2 and src.stats.errors >= 2  # the failed open + the dead stream


