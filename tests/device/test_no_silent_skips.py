"""No silent skips: test modules never skip themselves; a missing tool goes through
tests.helpers.require_tool / require_module, which fail and name the tool, in CI or not."""

from __future__ import annotations

import re

import pytest

from tests import helpers
from tests.helpers import REPO

SKIPS = re.compile(r"pytest\.(skip\(|importorskip\(|mark\.skip)")


def test_test_modules_do_not_skip_themselves() -> None:
    offenders = [f"{p.relative_to(REPO)}:{n}" for p in sorted((REPO / "tests").rglob("test_*.py"))
                 for n, line in enumerate(p.read_text().splitlines(), 1) if SKIPS.search(line)]
    assert offenders == [], "use tests.helpers.require_tool/require_module instead: " + ", ".join(offenders)


def test_test_modules_do_not_import_each_other() -> None:
    offenders = [f"{p.relative_to(REPO)}:{n}" for p in sorted((REPO / "tests").rglob("*.py"))
                 for n, line in enumerate(p.read_text().splitlines(), 1)
                 if re.match(r"\s*from tests\.[\w.]*test_\w+ import|\s*import tests\.[\w.]*test_", line)]
    assert offenders == [], "shared helpers go in tests/helpers.py or conftest.py: " + ", ".join(offenders)


@pytest.mark.parametrize("ci", ["true", ""])
def test_missing_tool_fails_naming_it_in_and_out_of_ci(monkeypatch: pytest.MonkeyPatch, ci: str) -> None:
    monkeypatch.setenv("CI", ci)
    with pytest.raises(pytest.fail.Exception, match="missing tool: no-such-tool-xyz"):
        helpers.require_tool("no-such-tool-xyz")
    with pytest.raises(pytest.fail.Exception, match="python module no_such_module_xyz"):
        helpers.require_module("no_such_module_xyz")
    assert helpers.require_tool("sh").endswith("/sh") and helpers.require_module("json").__name__ == "json"
