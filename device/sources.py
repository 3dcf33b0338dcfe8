"""Where audio comes from: a microphone (`MicSource`) or a file (`FileSource`).

Both yield float32 mono 16 kHz blocks from `blocks(stop)` until `stop` is set (or the file ends).
The microphone side is built to outlive its hardware: a PortAudio error, a stalled stream or an
unplugged device is logged, waited out with a growing back-off and reopened; the daemon never sees
an exception from it.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import soundfile as sf

from device.audio import TARGET_SR, AudioError, load_audio
from device.config import AudioConfig

log = logging.getLogger(__name__)
MAX_BACKOFF_S = 30.0


class AudioSource(Protocol):
    name: str

    def blocks(self, stop: threading.Event) -> Iterator[np.ndarray]: ...


def _sd() -> Any:
    """sounddevice, imported on first use: it needs the PortAudio library, which file-only users lack."""
    try:
        import sounddevice
    except OSError as exc:
        raise AudioError(f"PortAudio is not available ({exc}); install libportaudio2") from None
    return sounddevice


def device_arg(device: str) -> int | str | None:
    """Config text -> what sounddevice accepts: None (default), an index, or a name substring."""
    device = device.strip()
    if not device:
        return None
    return int(device) if device.isdigit() else device


def list_devices() -> list[dict[str, Any]]:
    """Input-capable PortAudio devices: index, name, host API, channels, default rate."""
    sd = _sd()
    apis = sd.query_hostapis()
    default_in = sd.default.device[0]
    return [{"index": i, "name": d["name"], "hostapi": apis[d["hostapi"]]["name"],
             "channels": d["max_input_channels"], "default_samplerate": d["default_samplerate"],
             "default": i == default_in}
            for i, d in enumerate(sd.query_devices()) if d["max_input_channels"] > 0]


class FileSource:
    """A WAV/FLAC file as a stream of blocks; `realtime` paces them like a microphone would."""

    def __init__(self, path: str | Path, block_ms: int = 30, realtime: bool = False) -> None:
        self.path = Path(path)
        self.name = f"file:{self.path}"
        self.block = TARGET_SR * block_ms // 1000
        self.realtime = realtime
        try:
            info = sf.info(str(self.path))
        except (sf.LibsndfileError, RuntimeError) as exc:
            raise AudioError(f"{self.path}: not a readable audio file ({exc})") from None
        # Native 16 kHz files stream from disk; anything else is converted in memory once.
        self._streamable = info.samplerate == TARGET_SR

    def _raw_blocks(self) -> Iterator[np.ndarray]:
        if not self._streamable:
            audio = load_audio(self.path, allow_silent=True)
            for start in range(0, len(audio), self.block):
                yield audio[start:start + self.block]
            return
        with sf.SoundFile(str(self.path)) as f:
            for data in f.blocks(blocksize=self.block, dtype="float32", always_2d=True):
                yield data.mean(axis=1)

    def blocks(self, stop: threading.Event) -> Iterator[np.ndarray]:
        start = time.monotonic()
        sent = 0
        for block in self._raw_blocks():
            if stop.is_set():
                return
            if self.realtime:
                stop.wait(max(0.0, start + sent / TARGET_SR - time.monotonic()))
            sent += len(block)
            yield block


@dataclass
class MicStats:
    opened: int = 0  # successful stream opens (1 + reopens)
    errors: int = 0  # open failures, stream errors and stalls
    overflows: int = 0  # PortAudio input overflow flags
    dropped_blocks: int = 0  # blocks discarded because the ring buffer was full
    device: str = ""  # the device actually opened


class MicSource:
    """A sounddevice InputStream (16 kHz mono int16) feeding a bounded ring buffer."""

    def __init__(self, cfg: AudioConfig) -> None:
        self.cfg = cfg
        self.device = device_arg(cfg.device)
        self.name = f"mic:{cfg.device or 'default'}"
        self.block = TARGET_SR * cfg.block_ms // 1000
        size = max(2, int(cfg.queue_seconds * 1000 / cfg.block_ms))
        self._queue: queue.Queue[np.ndarray] = queue.Queue(maxsize=size)
        self.stats = MicStats()

    def _callback(self, indata: np.ndarray, frames: int, time_info: Any, status: Any) -> None:
        if status.input_overflow:
            self.stats.overflows += 1
        block = indata[:, 0].astype(np.float32) / 32768.0
        try:
            self._queue.put_nowait(block)
        except queue.Full:  # the recognizer fell behind: keep the newest audio
            self.stats.dropped_blocks += 1
            if self.stats.dropped_blocks % 100 == 1:
                log.warning("audio: ring buffer full, %d blocks dropped so far", self.stats.dropped_blocks)
            try:
                self._queue.get_nowait()
            except queue.Empty:
                pass
            self._queue.put_nowait(block)

    def _open(self) -> Any:
        sd = _sd()
        stream = sd.InputStream(samplerate=TARGET_SR, channels=1, dtype="int16", blocksize=self.block,
                                device=self.device, callback=self._callback)
        stream.start()
        self.stats.opened += 1
        self.stats.device = str(sd.query_devices(stream.device)["name"])
        return stream

    def blocks(self, stop: threading.Event) -> Iterator[np.ndarray]:
        backoff = self.cfg.reopen_backoff_s
        while not stop.is_set():
            try:
                stream = self._open()
            except Exception as exc:  # PortAudioError, "no such device" ValueError, ALSA oddities
                self._failed(f"cannot open input device {self.device!r}: {exc}", backoff)
                stop.wait(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_S)
                self._rescan()
                continue
            log.info("audio: recording from %s", self.stats.device)
            backoff = self.cfg.reopen_backoff_s
            try:
                yield from self._drain(stream, stop)
            finally:
                self._close(stream)
            if not stop.is_set():
                stop.wait(backoff)
                self._rescan()

    def _drain(self, stream: Any, stop: threading.Event) -> Iterator[np.ndarray]:
        last = time.monotonic()
        while not stop.is_set():
            try:
                block = self._queue.get(timeout=0.2)
            except queue.Empty:
                if not stream.active:
                    self._failed(f"stream on {self.stats.device} stopped", self.cfg.reopen_backoff_s)
                    return
                if time.monotonic() - last > self.cfg.stall_seconds:
                    self._failed(f"no audio from {self.stats.device} for {self.cfg.stall_seconds:.0f} s",
                                 self.cfg.reopen_backoff_s)
                    return
                continue
            last = time.monotonic()
            yield block

    def _failed(self, message: str, backoff: float) -> None:
        self.stats.errors += 1
        log.error("audio: %s; reopening in %.1f s", message, backoff)

    def _close(self, stream: Any) -> None:
        try:
            stream.close(ignore_errors=True)
        except Exception as exc:  # a vanished device can fail even on close
            log.warning("audio: closing the stream failed: %s", exc)
        while not self._queue.empty():
            self._queue.get_nowait()

    @staticmethod
    def _rescan() -> None:
        """Re-initialise PortAudio so a re-plugged (or newly configured) device is found again."""
        sd = _sd()
        try:
            sd._terminate()
            sd._initialize()
        except Exception as exc:
            log.warning("audio: PortAudio re-initialisation failed: %s", exc)
