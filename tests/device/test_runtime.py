"""Runtime versions compare per PEP 440: a release candidate is older than its release."""

from __future__ import annotations

import json

import pytest

from device.runtime import find_runtime, parse_version, satisfies
from tests.helpers import REPO


@pytest.mark.parametrize(("version", "minimum", "ok"), [
    ("2.14.0rc1", "2.14.0", False),  # the bug: read as (2, 14, 1) it passed
    ("2.14.0", "2.14.0", True),
    ("2.14.0.post1", "2.14.0", True),
    ("2.13.1", "2.14.0", False),
    ("2.15.0rc0", "2.14.0", True),
    ("2.3.0", "2.14.0", False),  # ai-edge-litert numbering is its own: compared only with its own minimum
    ("not-a-version", "2.14.0", False),
])
def test_satisfies(version: str, minimum: str, ok: bool) -> None:
    assert satisfies(version, minimum) is ok


def test_parse_version_orders_prereleases_first() -> None:
    assert parse_version("2.14.0rc1") < parse_version("2.14.0") < parse_version("2.14.1")
    assert str(parse_version("bogus")) == "0"


def test_installed_runtime_version_parses() -> None:
    runtime = find_runtime()
    assert runtime.name in ("tflite_runtime", "ai_edge_litert")
    minimum = json.loads((REPO / "models/default/model.json").read_text())["min_runtime"][runtime.name]
    assert parse_version(runtime.version) >= parse_version(minimum)
