"""Disk footprint: model files, the device install with and without streamlit, the peers' venv.

    python -m scripts.bench.footprint --bundle models/default [--bundle build/exports/int8 ...] \
        --device-venv .venv-device [--peers-venv .venv-peers] --out build/bench/footprint.json

The device venv also holds the test tools, so "device install" is measured as the installed
distributions reachable from requirements-device.txt (sizes from each distribution's RECORD);
"without streamlit" drops streamlit, the requirements pinned only for it (streamlit depends on
them and no module in device/ imports them, e.g. pyarrow) and every distribution only they pull in.
"""

from __future__ import annotations

import argparse
import json
import re
from email.parser import HeaderParser
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement

REPO = Path(__file__).resolve().parents[2]


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def site_packages(venv: Path) -> Path:
    found = sorted(venv.glob("lib/python3*/site-packages"))
    if not found:
        raise SystemExit(f"{venv}: no lib/python3*/site-packages")
    return found[0]


def tree_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink())


class Installed:
    """The distributions in one site-packages: dependencies and bytes on disk per distribution."""

    def __init__(self, site: Path) -> None:
        self.site = site
        self.python = site.parent.name.removeprefix("python")  # "3.11"
        self.requires: dict[str, list[Requirement]] = {}
        self.bytes: dict[str, int] = {}
        self.modules: dict[str, list[str]] = {}
        for info in site.glob("*.dist-info"):
            meta = HeaderParser().parsestr((info / "METADATA").read_text(errors="replace"))
            name = canonical(meta["Name"])
            self.requires[name] = [Requirement(r) for r in meta.get_all("Requires-Dist") or []]
            self.bytes[name] = self._record_bytes(info)
            top = info / "top_level.txt"
            self.modules[name] = top.read_text().split() if top.exists() else [name.replace("-", "_")]

    def _record_bytes(self, info: Path) -> int:
        record = info / "RECORD"
        if not record.exists():
            return tree_bytes(info)
        total = 0
        for line in record.read_text(errors="replace").splitlines():
            f = self.site / line.rsplit(",", 2)[0]
            if f.is_file():
                total += f.stat().st_size
        return total

    def applies(self, req: Requirement) -> bool:
        env = {"python_version": self.python, "python_full_version": self.python + ".0", "extra": ""}
        return req.marker is None or req.marker.evaluate(env)

    def closure(self, roots: list[str]) -> set[str]:
        """Installed distributions reachable from `roots` through non-extra requirements."""
        seen: set[str] = set()
        todo = [canonical(r) for r in roots]
        while todo:
            name = todo.pop()
            if name in seen or name not in self.requires:
                continue
            seen.add(name)
            todo += [canonical(r.name) for r in self.requires[name] if self.applies(r)]
        return seen

    def size(self, names: set[str]) -> int:
        return sum(self.bytes[n] for n in names)


def requirement_names(path: Path, installed: Installed) -> list[str]:
    names = []
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        try:
            req = Requirement(line)
        except InvalidRequirement:
            continue
        if installed.applies(req):
            names.append(req.name)
    return names


def imported_by(code: Path, modules: list[str]) -> bool:
    text = "\n".join(p.read_text() for p in code.glob("*.py"))
    return any(re.search(rf"^\s*(import|from)\s+{re.escape(m)}\b", text, re.M) for m in modules)


def device_footprint(venv: Path, requirements: Path) -> dict:
    inst = Installed(site_packages(venv))
    roots = [canonical(r) for r in requirement_names(requirements, inst)]
    full = inst.closure(roots)
    for_streamlit = inst.closure(["streamlit"])
    lean = inst.closure([r for r in roots if r not in for_streamlit
                         or imported_by(REPO / "device", inst.modules.get(r, [r.replace("-", "_")]))])
    return {"venv": str(venv), "python": inst.python, "install_bytes": inst.size(full),
            "install_without_streamlit_bytes": inst.size(lean), "streamlit_only": sorted(full - lean),
            "site_packages_bytes": tree_bytes(inst.site)}


def peers_footprint(venv: Path) -> dict:
    inst = Installed(site_packages(venv))
    weights = inst.site / "resemblyzer" / "pretrained.pt"
    return {"venv": str(venv), "site_packages_bytes": tree_bytes(inst.site),
            "torch_bytes": inst.bytes.get("torch", 0),
            "resemblyzer_weights_bytes": weights.stat().st_size if weights.exists() else None}


def bundle_footprint(bundle: Path) -> dict:
    meta = json.loads((bundle / "model.json").read_text())
    files = {p.name: p.stat().st_size for p in sorted(bundle.iterdir()) if p.is_file()}
    return {"bundle": str(bundle), "quantization": meta.get("quantization"),
            "model_bytes": (bundle / meta["tflite"]).stat().st_size, "bundle_bytes": sum(files.values()),
            "files": files}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bundle", action="append", default=[], help="a model bundle (repeatable; first = headline)")
    p.add_argument("--device-venv", default=str(REPO / ".venv-device"))
    p.add_argument("--requirements", default=str(REPO / "requirements-device.txt"))
    p.add_argument("--peers-venv", help="the peers' venv (skipped when absent)")
    p.add_argument("--out", required=True)
    a = p.parse_args(argv)
    result = {"bundles": [bundle_footprint(Path(b)) for b in a.bundle],
              "device": device_footprint(Path(a.device_venv), Path(a.requirements))}
    if a.peers_venv and Path(a.peers_venv).is_dir():
        result["peers"] = peers_footprint(Path(a.peers_venv))
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(result, indent=2) + "\n")
    d = result["device"]
    print(f"device install {d['install_bytes'] / 2**20:.0f} MiB, without streamlit "
          f"{d['install_without_streamlit_bytes'] / 2**20:.0f} MiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
