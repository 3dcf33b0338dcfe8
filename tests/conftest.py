"""Shared fixtures. Tests run in two venvs (scripts/test.sh): tests/workstation in .venv-train
(tensorflow, librosa) and tests/device + tests/app in .venv-device (tflite-runtime 2.14, numpy<2).
The tiny corpus and tiny exported bundle are built once by the project's own scripts (with the
train venv) and cached under build/test-assets, keyed by the code that makes them."""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
ASSETS = REPO / "build" / "test-assets"
TRAIN_PY = REPO / ".venv-train" / "bin" / "python"
DEVICE_PY = REPO / ".venv-device" / "bin" / "python"
LITERT_PY = REPO / ".venv-litert" / "bin" / "python"


def _code_hash(*globs: str) -> str:
    h = hashlib.sha256()
    for g in globs:
        for p in sorted(REPO.glob(g)):
            h.update(p.read_bytes())
    return h.hexdigest()[:12]


def _built(target: Path, key: str, build) -> Path:
    stamp = target / ".built"
    if stamp.exists() and stamp.read_text() == key:
        return target
    subprocess.run(["rm", "-rf", str(target)], check=True)
    build(target)
    stamp.write_text(key)
    return target


def run(cmd: list, **kw) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO), **kw.pop("env", {})}
    proc = subprocess.run([str(c) for c in cmd], cwd=kw.pop("cwd", REPO), env=env, capture_output=True, text=True, **kw)
    return proc


def _checked(cmd: list) -> None:
    proc = run(cmd)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, cmd))} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}")


@pytest.fixture(scope="session")
def tiny_corpus() -> Path:
    """12 synthetic speakers x 8 utterances with splits (>= 2 validation speakers) and trial lists."""
    key = _code_hash("train/corpus.py", "train/sentences.py", "train/augment.py", "scripts/make_corpus.sh") + "-12x8"
    return _built(ASSETS / "corpus", key, lambda t: _checked(
        ["bash", REPO / "scripts/make_corpus.sh", "--out", t, "--speakers", "12", "--utts", "8"]))


@pytest.fixture(scope="session")
def tiny_run(tiny_corpus: Path) -> Path:
    """A tiny model trained for a few steps (pipeline tests, not accuracy)."""
    key = _code_hash("train/*.py", "device/features.py", "device/embedder.py") + str(tiny_corpus.stat().st_mtime_ns)
    return _built(ASSETS / "run", key, lambda t: _checked(
        [TRAIN_PY, "-m", "train", "--data", tiny_corpus, "--out", t, "--epochs", "2", "--steps", "6", "--batch", "16",
         "--copies", "1", "--heldout", "1", "--lstm-units", "32", "--embedding-dim", "32", "--workers", "1",
         "--window", "100", "--hop", "50"]))


@pytest.fixture(scope="session")
def tiny_bundle(tiny_run: Path, tiny_corpus: Path) -> Path:
    """The tiny run exported (dynamic-range quantization) and checked in both device runtimes."""
    key = _code_hash("export/*.py", "device/features.py", "device/bundle.py", "device/embedder.py", "device/runtime.py",
                     "device/scoring.py") + (tiny_run / ".built").read_text()
    return _built(ASSETS / "bundle", key, lambda t: _checked(
        [TRAIN_PY, "-m", "export", "--run", tiny_run, "--out", t, "--quant", "dynamic"]))
