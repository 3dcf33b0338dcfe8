"""Device-side benchmarks: run in the device venvs and import only `device/` (see scripts/bench/__init__.py)."""

from __future__ import annotations

from pathlib import Path


def rss_mb() -> float:
    """This process's resident set size in MiB (/proc/self/status VmRSS)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")
