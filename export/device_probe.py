"""Runs inside a device venv (imports only device/ and numpy): embeds files with a bundle and
times the model, so the export can compare each real runtime with the Keras model.

python -m export.device_probe --bundle DIR --files LIST --out OUT.npz [--runtime NAME]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from device.embedder import Embedder


def window_latency_ms(embedder: Embedder, runs: int = 200) -> float:
    rng = np.random.default_rng(0)
    window = rng.standard_normal((embedder.window_frames, embedder.features.n_ceps)).astype(np.float32)
    embedder.embed_window(window)
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        embedder.embed_window(window)
        times.append(time.perf_counter() - t)
    return float(np.median(times) * 1000)


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--bundle", required=True)
    p.add_argument("--files", required=True, help="text file, one audio path a line")
    p.add_argument("--out", required=True)
    p.add_argument("--runtime")
    a = p.parse_args()
    paths = [line for line in Path(a.files).read_text().splitlines() if line]
    emb = Embedder(a.bundle, threads=1, runtime=a.runtime)
    vectors, details = emb.embed_files(paths)
    latency = {f"threads_{n}": window_latency_ms(Embedder(emb.bundle, threads=n, runtime=a.runtime)) for n in (1, 2)}
    np.savez(a.out, vectors=vectors, padded=np.array([d.padded for d in details]))
    info = {"runtime": emb.runtime.name, "version": emb.runtime.version, "latency_ms_per_window": latency}
    Path(a.out).with_suffix(".json").write_text(json.dumps(info))
    print(json.dumps(info))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
