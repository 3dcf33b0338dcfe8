"""device/ stays light: importing all of it in the venv made from requirements-device.txt pulls
in neither tensorflow nor librosa (nor train/, export/, app/)."""

from __future__ import annotations

import pkgutil

import device
from tests.helpers import DEVICE_PY, REPO, run


def test_device_imports_nothing_heavy():
    modules = [m.name for m in pkgutil.iter_modules(device.__path__, "device.") if m.name != "device.__main__"]
    code = ("import importlib, sys\n"
            f"for m in {modules!r}: importlib.import_module(m)\n"
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
            "('tensorflow', 'tf_keras', 'keras', 'librosa', 'train', 'export', 'app'))\n"
            "print('HEAVY', bad)\n")
    proc = run([DEVICE_PY, "-c", code], cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    assert "HEAVY []" in proc.stdout, proc.stdout
    assert len(modules) >= 6


def test_device_venv_has_no_tensorflow_or_librosa():
    proc = run([DEVICE_PY, "-c", "import importlib.util as u; print([m for m in ('tensorflow', 'librosa') if u.find_spec(m)])"])
    assert proc.stdout.strip() == "[]", proc.stdout + proc.stderr
