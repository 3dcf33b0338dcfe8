"""Daemon benchmark: end-of-utterance -> decision latency and memory over 1000 utterances.

    .venv-device/bin/python -m scripts.bench.device_side.daemon_latency [--model DIR] [--utterances 1000]

A FLAC of N utterances (3 s of demo speech + 1 s of silence each) is streamed through FileSource
into the real daemon loop (`run_daemon`: VAD, streamed embedding, scoring, event write) with three
demo speakers enrolled. Latency is measured from the moment the source hands over the block in
which the VAD closes an utterance until the decision has been stored, as wall time and as this
thread's CPU time (what the work costs, without the waits a machine shared with other jobs adds);
in live use the VAD hangover (reported separately) comes on top. RSS is sampled as the run goes,
to show it stays flat. Writes build/bench/daemon.json (or --out). Not a test.
"""

from __future__ import annotations

import argparse
import json
import platform
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import soundfile as sf

from device.audio import TARGET_SR, load_audio
from device.config import Config
from device.daemon import Result, run_daemon
from device.embedder import Embedder
from device.enroll import Enroller
from device.sources import FileSource
from device.store import Store
from device.vad import END_RATIO
from scripts.bench.device_side import rss_mb

REPO = Path(__file__).resolve().parents[3]
CLIPS = REPO / "device" / "demo_clips"
OUT = REPO / "build" / "bench"
SPEECH_S, GAP_S = 3.0, 1.0


def make_stream(path: Path, n: int) -> None:
    """n x (3 s of speech cut from the demo enrollment clips + 1 s of silence), written block-wise."""
    clips = [load_audio(p)[: int(SPEECH_S * TARGET_SR)] for p in sorted(CLIPS.glob("*-enroll-*.flac"))]
    gap = np.zeros(int(GAP_S * TARGET_SR), np.float32)
    with sf.SoundFile(str(path), "w", TARGET_SR, 1, subtype="PCM_16", format="FLAC") as f:
        f.write(gap)
        for i in range(n):
            f.write(np.concatenate([clips[i % len(clips)], gap]))


class TimedSource(FileSource):
    """FileSource that remembers when it handed over its latest block (wall clock and this thread's CPU clock)."""

    last_block_at = 0.0
    last_block_cpu = 0.0

    def blocks(self, stop: threading.Event) -> Iterator[np.ndarray]:
        for block in super().blocks(stop):
            self.last_block_at, self.last_block_cpu = time.perf_counter(), time.thread_time()
            yield block


def percentiles(ms: list[float]) -> dict[str, float]:
    a = np.array(ms)
    return {"median": round(float(np.median(a)), 2), "p95": round(float(np.percentile(a, 95)), 2),
            "min": round(float(a.min()), 2), "max": round(float(a.max()), 2)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default=str(REPO / "models" / "default"))
    ap.add_argument("--utterances", type=int, default=1000)
    ap.add_argument("--out", type=Path, default=OUT / "daemon.json")
    args = ap.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    store_path = OUT / "daemon-store.db"
    for p in OUT.glob("daemon-store.db*"):
        p.unlink()
    cfg = Config(model=args.model, store=str(store_path), policy="eer", heartbeat_s=2.0)
    embedder = Embedder(args.model)
    with Store(store_path) as store:
        for who in ("alan", "lyubov", "mikhail"):
            enroller = Enroller.for_store(store, embedder, cfg.override(**{"enroll.consistency": -1e9}), who)
            for p in sorted(CLIPS.glob(f"{who}-enroll-*.flac")):
                enroller.add(load_audio(p), p.name)
            enroller.save(store)
    del embedder
    stream = OUT / f"daemon-{args.utterances}.flac"
    if not stream.exists():
        make_stream(stream, args.utterances)

    source = TimedSource(stream, cfg.audio.block_ms)
    latencies: list[float] = []
    cpu: list[float] = []
    rss: dict[int, float] = {}

    def emit(result: Result) -> None:
        latencies.append((time.perf_counter() - source.last_block_at) * 1000)
        cpu.append((time.thread_time() - source.last_block_cpu) * 1000)
        if len(latencies) in (1, 10, 100, 250, 500, 750) or len(latencies) % 1000 == 0:
            rss[len(latencies)] = round(rss_mb(), 1)

    start = time.perf_counter()
    counters = run_daemon(cfg, source, threading.Event(), emit=emit)
    wall = time.perf_counter() - start
    rss[len(latencies)] = round(rss_mb(), 1)
    with Store(store_path) as store:
        status = store.status()
    report = {
        "model": status.get("model"), "quantization": status.get("quantization"), "runtime": status.get("runtime"),
        "machine": platform.machine(), "python": platform.python_version(),
        "utterances_in": args.utterances, "decisions": len(latencies), "skipped": counters.errors,
        "utterance_seconds": SPEECH_S,
        "latency_ms": percentiles(latencies), "latency_cpu_ms": percentiles(cpu),
        "load_average_1min": float(Path("/proc/loadavg").read_text().split()[0]),
        "vad_hangover_ms": int(cfg.vad.padding_ms * END_RATIO),
        "rss_mb_by_decisions": rss,
        "audio_seconds": args.utterances * (SPEECH_S + GAP_S), "wall_seconds": round(wall, 1),
        "realtime_factor": round(args.utterances * (SPEECH_S + GAP_S) / wall, 1),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
