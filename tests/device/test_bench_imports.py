"""The device-side benchmarks (scripts/bench/device_side) run in the Pi's own venv: importing every
one of them there pulls in nothing from train/, export/ or app/, nor tensorflow, librosa, sklearn."""

from __future__ import annotations

import pkgutil

import scripts.bench.device_side as device_side
from tests.helpers import DEVICE_PY, REPO, run

HEAVY = ("train", "export", "app", "tensorflow", "tf_keras", "keras", "librosa", "sklearn", "matplotlib", "torch")


def test_device_side_benchmarks_import_only_device_code():
    modules = [m.name for m in pkgutil.iter_modules(device_side.__path__, "scripts.bench.device_side.")]
    assert {"scripts.bench.device_side.speed", "scripts.bench.device_side.daemon_latency",
            "scripts.bench.device_side.soak"} <= set(modules)
    code = ("import importlib, sys\n"
            f"for m in {modules!r}: importlib.import_module(m)\n"
            f"print('HEAVY', sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r}))\n"
            "print('DEVICE', 'device.embedder' in sys.modules)\n")
    proc = run([DEVICE_PY, "-c", code], cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    assert "HEAVY []" in proc.stdout, proc.stdout
    assert "DEVICE True" in proc.stdout, proc.stdout
