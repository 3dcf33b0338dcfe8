"""The trial conditions every system is scored on (workstation side; the peers' venv imports it too,
so it stays free of heavy imports)."""

from __future__ import annotations

from pathlib import Path

from train.datasets import Trial, read_trials

CONDITIONS = ("clean", "noisy", "short")


def load_trials(trials_dir: Path) -> dict[str, list[Trial]]:
    """{condition: trials} for each trials_<condition>.txt present in `trials_dir`."""
    return {c: read_trials(trials_dir / f"trials_{c}.txt") for c in CONDITIONS
            if (trials_dir / f"trials_{c}.txt").exists()}


def trial_files(trials: dict[str, list[Trial]], root: Path) -> list[Path]:
    """Every file any trial list names, once, in first-seen order."""
    return list(dict.fromkeys(root / p for ts in trials.values() for t in ts for p in t[1:]))
