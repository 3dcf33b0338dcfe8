"""Find a TFLite interpreter: ai_edge_litert, then tflite_runtime, then tensorflow.lite.

The import of tensorflow is only a last resort for workstations; the device venv never has it.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from importlib import metadata
from typing import Any

from packaging.version import InvalidVersion, Version

RUNTIMES = (  # (name, module, attribute path to the Interpreter class, distribution for the version)
    ("ai_edge_litert", "ai_edge_litert.interpreter", "Interpreter", "ai-edge-litert"),
    ("tflite_runtime", "tflite_runtime.interpreter", "Interpreter", "tflite-runtime"),
    ("tensorflow", "tensorflow", "lite.Interpreter", "tensorflow"),
)


class RuntimeMissing(RuntimeError):
    """No TFLite interpreter could be imported."""


@dataclass(frozen=True)
class Runtime:
    name: str
    version: str
    interpreter_class: Any


def parse_version(text: str) -> Version:
    """A runtime's version per PEP 440, so "2.14.0rc1" sorts before "2.14.0" (a release candidate
    does not satisfy ">= 2.14.0"). Unparseable text counts as 0, i.e. older than any requirement."""
    try:
        return Version(text)
    except InvalidVersion:
        return Version("0")


def satisfies(version: str, minimum: str) -> bool:
    """True when runtime `version` is at least `minimum`; "2.14.0rc1" does not satisfy "2.14.0"."""
    return parse_version(version) >= parse_version(minimum)


def find_runtime(preferred: str | None = None) -> Runtime:
    """The first importable runtime (or exactly `preferred`)."""
    candidates = [r for r in RUNTIMES if preferred in (None, r[0])]
    if not candidates:
        raise RuntimeMissing(f"unknown runtime {preferred!r}; known: {', '.join(r[0] for r in RUNTIMES)}")
    errors = []
    for name, module, attr, dist in candidates:
        try:
            mod = importlib.import_module(module)
        except ImportError as exc:
            errors.append(f"{name}: {exc}")
            continue
        try:
            version = metadata.version(dist)
        except metadata.PackageNotFoundError:
            version = getattr(mod, "__version__", "0")
        cls = mod
        for part in attr.split("."):
            cls = getattr(cls, part)
        return Runtime(name, version, cls)
    raise RuntimeMissing("no TFLite runtime importable (" + "; ".join(errors) + ")")
