"""Helpers shared by the test modules (which never import from each other): paths of the venvs,
running the project's commands, the tiny corpus's speakers, and `require_tool`.

Imported in every venv (.venv-train has no webrtcvad or sounddevice), so device modules are imported
inside the helpers that need them, not here at the top.

No silent skips: `require_tool` and `require_module` fail a test that lacks a tool, naming it, on any
machine; scripts/setup_apt.sh and scripts/setup_venvs.sh install everything the tests need.
"""

from __future__ import annotations

import csv
import importlib
import os
import queue
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import IO, Any

import numpy as np
import pytest

REPO = Path(__file__).resolve().parent.parent
ASSETS = REPO / "build" / "test-assets"
TRAIN_PY = REPO / ".venv-train" / "bin" / "python"
DEVICE_PY = REPO / ".venv-device" / "bin" / "python"
TFLITE_PY = REPO / ".venv-tflite" / "bin" / "python"
PEERS_PY = REPO / ".venv-peers" / "bin" / "python"  # Resemblyzer: the benchmark's peer and the distillation teacher
# `python -m train` flags for a seconds-long run on the tiny corpus (pipeline tests, not accuracy)
TINY_TRAIN = ["--steps", "8", "--batch", "16", "--copies", "1", "--heldout", "1", "--lstm-units", "32",
              "--embedding-dim", "32", "--workers", "1", "--window", "100", "--hop", "50", "--patience", "10"]
SETUP_HINT = "scripts/setup_apt.sh and scripts/setup_venvs.sh install it"


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def missing(what: str) -> None:
    """A needed tool is absent: the test fails, naming it, on every machine. A skip would read as a
    pass in a summary nobody scrolls; scripts/test.sh installs every tool the tests use."""
    pytest.fail(f"missing tool: {what} ({SETUP_HINT})", pytrace=False)


def require_tool(name: str) -> str:
    """Path of the executable `name` (a command or an absolute path); see `missing`."""
    found = shutil.which(name)
    if found is None:
        missing(name)
    return str(found)


def require_module(name: str) -> ModuleType:
    """The imported module `name`; see `missing`."""
    try:
        return importlib.import_module(name)
    except (ImportError, OSError) as exc:  # OSError: sounddevice without libportaudio2
        missing(f"python module {name} ({exc})")
        raise  # not reached: missing() fails


def run(cmd: list, **kw: Any) -> subprocess.CompletedProcess:
    """Run a command from the repository root with PYTHONPATH set; output captured as text."""
    env = {**os.environ, "PYTHONPATH": str(REPO), **kw.pop("env", {})}
    return subprocess.run([str(c) for c in cmd], cwd=kw.pop("cwd", REPO), env=env, capture_output=True, text=True, **kw)


def log_rows(run_dir: Path) -> list[dict]:
    """The rows of a training run's log.csv."""
    with open(run_dir / "log.csv") as f:
        return list(csv.DictReader(f))


def corpus_speakers(root: Path) -> dict[str, list[Path]]:
    """speaker -> sorted utterance files (directories like _noisy/ are variants, not speakers)."""
    return {d.name: sorted(d.glob("*.wav")) for d in sorted(root.iterdir())
            if d.is_dir() and not d.name.startswith("_") and any(d.glob("*.wav"))}


def enroll_first_two(cfg: Any, bundle: Path, speakers: dict[str, list[Path]]) -> None:
    """Enroll the first two corpus speakers from four utterances each into cfg's store."""
    from device.audio import load_audio
    from device.embedder import Embedder
    from device.enroll import Enroller
    from device.store import Store

    embedder = Embedder(bundle)
    with Store(cfg.store_path) as store:
        for name in list(speakers)[:2]:
            enroller = Enroller.for_store(store, embedder, cfg, name)
            for p in speakers[name][:4]:
                enroller.add(load_audio(p), p.name)
            enroller.save(store)


def recognize_offline(cfg: Any, audio: np.ndarray, policy: str) -> Any:
    """The decision the device's own Recognizer gives `audio` with cfg's store: what a daemon,
    CLI or microphone path must reproduce for the same samples."""
    from device.recognizer import Recognizer
    from device.store import Store

    with Store(cfg.store_path) as store:
        return Recognizer(cfg, store, policy).recognize(audio)


def demo_household(store: Path) -> Any:
    """A `far1` config whose store has alan and mikhail enrolled from the demo clips with the shipped
    model (victoria is the demo's stranger)."""
    from device.audio import load_audio
    from device.config import Config
    from device.embedder import Embedder
    from device.enroll import Enroller, enroll_samples
    from device.store import Store

    shipped, clips = REPO / "models" / "default", REPO / "device" / "demo_clips"
    cfg = Config(model=str(shipped), store=str(store), policy="far1")
    embedder = Embedder(shipped)
    with Store(cfg.store_path) as db:
        for name in ("alan", "mikhail"):
            enroller = Enroller.for_store(db, embedder, cfg, name)
            enroll_samples(enroller, db, [(p.name, load_audio(p)) for p in sorted(clips.glob(f"{name}-enroll-*"))])
    return cfg


def vad_segments(cfg: Any, audio: np.ndarray) -> list[np.ndarray]:
    """The utterances the daemon's VAD cuts from `audio`, cut offline."""
    from device.vad import Segmenter

    segmenter = Segmenter(cfg.vad)
    return segmenter.feed(audio) + segmenter.flush()


class ListSource:
    """An audio source that yields `audio` in 30 ms blocks, as fast as it is read."""

    name = "test:list"

    def __init__(self, audio: np.ndarray) -> None:
        self.audio = audio

    def blocks(self, stop: threading.Event) -> Iterator[np.ndarray]:
        for start in range(0, len(self.audio), 480):
            yield self.audio[start:start + 480]


def lines(stream: IO[str]) -> queue.Queue:
    """Lines of `stream` as (monotonic time, line), read by a background thread."""
    q: queue.Queue = queue.Queue()

    def pump() -> None:
        for line in stream:
            q.put((time.monotonic(), line))

    threading.Thread(target=pump, daemon=True).start()
    return q


def start_pulse(pa: Any) -> None:
    """Start a tests.audio_env.PulseNullSink; a missing PulseAudio is `missing`, a failing one fails."""
    require_tool("pulseaudio")
    require_tool("paplay")
    require_tool("pactl")
    reason = pa.start()
    assert reason is None, f"PulseAudio could not start: {reason}"
