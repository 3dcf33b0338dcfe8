"""Soak: N utterances through FileSource into the real daemon loop; memory, descriptors and the
event table must stay flat.

    .venv-device/bin/python -m scripts.bench.device_side.soak [--model DIR] [--utterances 10000] [--every 500]

The demo stream of scripts/bench/device_side/daemon_latency.py (one utterance per demo enrollment clip, 3 s of
speech + 1 s of silence) is played again and again by FileSource into `run_daemon` (VAD, embedding,
scoring, event write, heartbeat thread) with the demo speakers enrolled and a small
event_retention, so trimming runs all the time (a session gap shorter than the 1-s pauses makes every
utterance a session of its own, so every decision is a new event row). Every `--every` decisions it samples this
process's RSS (/proc/self/status), open descriptors (/proc/self/fd) and the event count. Writes
build/bench/soak.json (or --out), with --doc rewrites the soak section of docs/RELIABILITY.md, and
exits 1 when a check fails:
  - RSS after the first sample (warm-up: interpreter, model, SQLite cache) grows less than 8 MiB,
  - the descriptor count never changes after the first sample,
  - the event table never holds more rows than event_retention.
"""

from __future__ import annotations

import argparse
import json
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from device.audio import load_audio
from device.config import Config, SessionConfig
from device.daemon import Result, run_daemon
from device.embedder import Embedder
from device.enroll import Enroller
from device.sources import FileSource
from device.store import Store
from scripts.bench.device_side import rss_mb
from scripts.bench.device_side.daemon_latency import CLIPS, OUT, make_stream

RSS_GROWTH_LIMIT_MB = 8.0
RETENTION = 300
DOC_BEGIN, DOC_END = "<!-- soak:begin -->", "<!-- soak:end -->"


class Repeated:
    """One FileSource played `times` times in a row, as one long stream."""

    def __init__(self, source: FileSource, times: int) -> None:
        self.source, self.times, self.name = source, times, f"{source.name} x{times}"

    def blocks(self, stop: threading.Event) -> Iterator[np.ndarray]:
        for _ in range(self.times):
            yield from self.source.blocks(stop)


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def enroll_demo(cfg: Config) -> None:
    embedder = Embedder(cfg.model)
    with Store(cfg.store_path) as store:
        for who in sorted({p.name.split("-")[0] for p in CLIPS.glob("*-enroll-*.flac")}):
            enroller = Enroller.for_store(store, embedder, cfg.override(**{"enroll.consistency": -1e9}), who)
            for p in sorted(CLIPS.glob(f"{who}-enroll-*.flac")):
                enroller.add(load_audio(p), p.name)
            enroller.save(store)


def soak(model: str, utterances: int, every: int, work: Path) -> dict:
    work.mkdir(parents=True, exist_ok=True)
    for p in work.glob("soak-store.db*"):
        p.unlink()
    cfg = Config(model=model, store=str(work / "soak-store.db"), policy="eer", heartbeat_s=1.0,
                 event_retention=RETENTION, session=SessionConfig(gap_s=0.5))
    enroll_demo(cfg)
    clips = len(list(CLIPS.glob("*-enroll-*.flac")))
    stream = work / f"daemon-{clips}.flac"
    if not stream.exists():
        make_stream(stream, clips)
    stop = threading.Event()
    samples: list[dict] = []
    reader = Store(cfg.store_path, readonly=True)  # opened before the first sample: not counted as growth
    start = time.perf_counter()
    decisions = 0

    def emit(result: Result) -> None:
        nonlocal decisions
        decisions += 1
        if decisions % every == 0:
            samples.append({"utterances": decisions, "rss_mb": round(rss_mb(), 2), "fds": open_fds(),
                            "events": reader.count_events(), "seconds": round(time.perf_counter() - start, 1)})
        if decisions >= utterances:
            stop.set()

    rounds = -(-utterances // clips) + 1  # the VAD may merge or drop one now and then: play a spare round
    counters = run_daemon(cfg, Repeated(FileSource(stream, cfg.audio.block_ms), rounds), stop, emit=emit)
    reader.close()
    wall = time.perf_counter() - start
    warm = samples[0] if samples else {"rss_mb": 0.0, "fds": 0}
    growth = max((s["rss_mb"] for s in samples), default=0.0) - warm["rss_mb"]
    checks = {
        "rss_flat": growth < RSS_GROWTH_LIMIT_MB,
        "fds_flat": len({s["fds"] for s in samples}) <= 1,
        "events_bounded": all(s["events"] <= RETENTION for s in samples),
        "all_decided": decisions >= utterances and counters.errors == 0 and counters.store_errors == 0,
    }
    return {"model": model, "utterances": decisions, "skipped": counters.errors, "store_errors": counters.store_errors,
            "sample_every": every, "event_retention": RETENTION, "rss_growth_after_warmup_mb": round(growth, 2),
            "rss_growth_limit_mb": RSS_GROWTH_LIMIT_MB, "wall_seconds": round(wall, 1),
            "utterances_per_second": round(decisions / wall, 1), "samples": samples, "checks": checks,
            "ok": all(checks.values())}


def doc_section(report: dict) -> str:
    """The Markdown that soak.sh puts between the soak markers of docs/RELIABILITY.md."""
    checks = ", ".join(f"{k} {'yes' if v else 'NO'}" for k, v in report["checks"].items())
    rows = [f"| {s['utterances']} | {s['rss_mb']:.1f} | {s['fds']} | {s['events']} | {s['seconds']} |"
            for s in report["samples"]]
    return "\n".join([
        DOC_BEGIN,
        f"{report['utterances']} utterances in {report['wall_seconds']} s ({report['utterances_per_second']}/s), "
        f"model `{report['model']}`, event_retention {report['event_retention']}; RSS growth after the first sample "
        f"{report['rss_growth_after_warmup_mb']} MiB (limit {report['rss_growth_limit_mb']}); {checks}.",
        "", "| utterances | RSS MiB | open fds | events stored | seconds |", "| ---: | ---: | ---: | ---: | ---: |",
        *rows, DOC_END])


def write_doc(path: Path, report: dict) -> None:
    text = path.read_text()
    head, _, rest = text.partition(DOC_BEGIN)
    _, _, tail = rest.partition(DOC_END)
    path.write_text(head + doc_section(report) + tail)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default=str(OUT.parents[1] / "models" / "default"))
    ap.add_argument("--utterances", type=int, default=10000)
    ap.add_argument("--every", type=int, default=500, help="sample RSS, descriptors and events every N decisions")
    ap.add_argument("--out", type=Path, default=OUT / "soak.json")
    ap.add_argument("--doc", type=Path, help="rewrite the soak section (between its markers) of this Markdown file")
    args = ap.parse_args()
    report = soak(args.model, args.utterances, args.every, args.out.parent)
    args.out.write_text(json.dumps(report, indent=2))
    if args.doc:
        write_doc(args.doc, report)
    print(json.dumps({k: v for k, v in report.items() if k != "samples"}, indent=2))
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
