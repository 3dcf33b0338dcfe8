"""Shared steps of the reliability tests: enroll through the real CLI, write a device config."""

from __future__ import annotations

from pathlib import Path

from tests.helpers import DEVICE_PY, run


def write_config(path: Path, bundle: Path, store: Path, extra: str = "") -> Path:
    """A device TOML config that accepts any consistent sample (the tiny model is weak)."""
    path.write_text(f'model = "{bundle}"\nstore = "{store}"\n{extra}\n[enroll]\nconsistency = -100.0\n')
    return path


def enroll_cli(config: Path, name: str, files: list[Path], *flags: str) -> None:
    proc = run([DEVICE_PY, "-m", "device", "enroll", name, "--config", config, "--files", *files, *flags])
    assert proc.returncode == 0, proc.stderr[-2000:]
