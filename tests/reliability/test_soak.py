"""Load: the reduced soak (1000 utterances, < 60 s) of scripts/bench/device_side/soak.py through the real
daemon loop; scripts/bench/soak.sh runs the full 10 000 and records the curve in docs/RELIABILITY.md."""

from __future__ import annotations

import json
from pathlib import Path

from tests.helpers import DEVICE_PY, run


def test_soak_1000_utterances_flat(tiny_bundle: Path, tmp_path: Path) -> None:
    out = tmp_path / "soak.json"
    proc = run([DEVICE_PY, "-m", "scripts.bench.device_side.soak", "--model", tiny_bundle, "--utterances", "1000",
                "--every", "250", "--out", out], timeout=300)
    report = json.loads(out.read_text())
    assert proc.returncode == 0 and report["ok"], (report["checks"], report["samples"], proc.stderr[-2000:])
    assert report["utterances"] >= 1000 and len(report["samples"]) == 4
    assert max(s["events"] for s in report["samples"]) == report["event_retention"]  # trimmed, not just small
