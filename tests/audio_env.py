"""Private audio plumbing for tests: never touches the real home directory or a real sound card.

- `alsa_file_env`: a HOME with an ~/.asoundrc defining an ALSA `type file` pcm whose capture side
  reads a raw s16le file, so a real PortAudio stream delivers exactly known samples.
- `PulseNullSink`: a private PulseAudio server with a null sink; `paplay` into it and record its
  monitor through ALSA's `pulse` pcm, at real-time pace.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import numpy as np

FILE_PCM = "speakerid_file"


def alsa_file_env(home: Path, samples: np.ndarray) -> dict[str, str]:
    """Environment (HOME) in which the PortAudio device `speakerid_file` captures `samples` (int16)."""
    home.mkdir(parents=True, exist_ok=True)
    raw = home / "capture.raw"
    raw.write_bytes(np.asarray(samples, dtype="<i2").tobytes())
    (home / ".asoundrc").write_text(
        f'pcm.{FILE_PCM} {{\n  type file\n  slave.pcm "null"\n  file "/dev/null"\n  infile "{raw}"\n  format "raw"\n}}\n')
    return {"HOME": str(home)}


class PulseNullSink:
    """`with PulseNullSink(tmp) as pa:` -> pa.env for the recorder, pa.play(path) to speak into it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.env = {"HOME": str(root / "home"), "PULSE_RUNTIME_PATH": str(root / "run"),
                    "XDG_RUNTIME_DIR": str(root / "run"), "PULSE_SINK": "speakerid", "PULSE_SOURCE": "speakerid.monitor"}
        self.proc: subprocess.Popen | None = None

    def start(self) -> str | None:
        """Start the server; returns a reason string if PulseAudio is unavailable."""
        if not shutil.which("pulseaudio") or not shutil.which("paplay"):
            return "pulseaudio/paplay not installed (scripts/setup_apt.sh)"
        for d in ("home", "run"):
            (self.root / d).mkdir(parents=True, exist_ok=True, mode=0o700)
        env = {**os.environ, **self.env}
        self.proc = subprocess.Popen(
            ["pulseaudio", "-n", "--daemonize=no", "--exit-idle-time=-1", "--system=false", "--disallow-exit",
             "-L", "module-native-protocol-unix", "-L", "module-null-sink sink_name=speakerid rate=16000 channels=1",
             "--log-target=file:" + str(self.root / "pulse.log")], env=env,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return f"pulseaudio exited with {self.proc.returncode}: {self.log()[-500:]}"
            if subprocess.run(["pactl", "info"], env=env, capture_output=True).returncode == 0:
                return None
            time.sleep(0.2)
        return "pulseaudio did not answer within 10 s"

    def log(self) -> str:
        path = self.root / "pulse.log"
        return path.read_text() if path.exists() else ""

    def play(self, path: Path) -> subprocess.Popen:
        return subprocess.Popen(["paplay", str(path)], env={**os.environ, **self.env})

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def __enter__(self) -> PulseNullSink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
