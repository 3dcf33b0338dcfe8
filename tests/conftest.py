"""Shared fixtures. Tests run in two venvs (scripts/test.sh): tests/workstation in .venv-train
(tensorflow, librosa) and tests/device + tests/app in .venv-device (ai-edge-litert 1.4.0, numpy<2: what the Pi installs).
The tiny corpus and tiny exported bundle are built once by the project's own scripts (with the
train venv) and cached under build/test-assets, keyed by the code that makes them."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import pytest

from tests.helpers import ASSETS, DEVICE_PY, REPO, TFLITE_PY, TRAIN_PY, in_ci, run  # noqa: F401  (re-exported)


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


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> object:
    """Under CI=true a skipped test is a failed one: CI must run everything (tests.helpers.missing
    already fails with the tool's name; this catches any other skip)."""
    outcome = yield
    report = outcome.get_result()
    if in_ci() and report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"skipped under CI=true (CI runs every test): {reason}"
    return outcome


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> object:
    """The same for a module that skips itself while being collected."""
    outcome = yield
    report = outcome.get_result()
    if in_ci() and report.skipped:
        report.outcome = "failed"
        report.longrepr = f"module skipped under CI=true (CI runs every test): {report.longrepr}"
    return outcome


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
                     "device/scoring.py", "device/calibration.py") + (tiny_run / ".built").read_text()
    return _built(ASSETS / "bundle", key, lambda t: _checked(
        [TRAIN_PY, "-m", "export", "--run", tiny_run, "--out", t, "--quant", "dynamic"]))


@pytest.fixture(scope="session")
def small_dev() -> Path:
    """The development set's small form (4 RHVoice + 4 KLettres people, every condition, both halves),
    built by the project's own script."""
    key = _code_hash("train/devset.py", "train/channels.py", "train/corpus.py", "train/sentences.py", "train/augment.py",
                     "scripts/make_devset.sh")
    return _built(ASSETS / "dev", key, lambda t: _checked(["bash", REPO / "scripts/make_devset.sh", "--out", t, "--small"]))
