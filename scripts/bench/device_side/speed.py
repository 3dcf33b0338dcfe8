"""Single-thread speed of the device path (MFCC + TFLite embedding) on a 3-s utterance, the
model's multiply-accumulate count and the Raspberry Pi estimate derived from it, and (with
--cpu-seconds) the daemon's CPU load while listening to room noise vs to continuous speech.

Runs in a device venv (.venv-device: ai_edge_litert, .venv-tflite: tflite_runtime) and imports
only the device code, exactly what the Pi runs:
    python -m scripts.bench.device_side.speed --bundle models/default --runtime ai_edge_litert --out x.json
"""

from __future__ import annotations

import argparse
import json
import math
import os
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from device.audio import load_audio, save_wav
from device.bundle import Bundle
from device.embedder import Embedder, window_starts
from device.features import mfcc, normalize, reference_cepstra

REPO = Path(__file__).resolve().parents[3]
CLIPS = REPO / "device" / "demo_clips"
UTTERANCE_SECONDS = 3.0
# The Pi estimate's assumptions (an estimate, not a measurement; see docs/BENCHMARKS.md).
# Pi 4 (Cortex-A72 @ 1.8 GHz): 1.0 GMAC/s effective for batch-1 conv + LSTM in single-thread TFLite,
# a conservative ~1/8 of the core's NEON fp32 peak (2 x 128-bit FMA pipes = 8 MAC/cycle).
# Pi 5 (Cortex-A76 @ 2.4 GHz): Raspberry Pi's launch figure of 2-3x the Pi 4's CPU speed; 2.5x used.
PI_GMACS = {"pi4": 1.0, "pi5": 2.5}


def window_macs(meta: dict) -> dict[str, int]:
    """Multiply-accumulates of one window through the model in model.json, per layer kind."""
    m, frames = meta["model"], int(meta["window"]["frames"])
    t, c = frames, int(m["n_ceps"])
    conv = 0
    for f, k in zip(m["conv_filters"], m["conv_kernels"]):
        conv += t * k * c * f  # 'same' padding: one output per input frame
        t, c = math.ceil(t / 2), f  # MaxPooling1D(2, padding='same')
    u = int(m["lstm_units"])
    lstm = t * 4 * u * (c + u)  # four gates, input and recurrent matmuls per step
    pooled = 2 * u if m.get("pooling") == "stats" else u  # statistics pooling: mean and std
    dense = pooled * int(m["embedding_dim"])
    return {"conv": conv, "lstm": lstm, "dense": dense, "total": conv + lstm + dense}


def utterance_windows(bundle: Bundle, seconds: float) -> int:
    return len(window_starts(bundle.features.n_frames(int(seconds * bundle.features.sample_rate)),
                             bundle.window_frames, bundle.hop_frames))


def pi_estimate(bundle: Bundle) -> dict:
    """MACs per second of audio (sliding windows every `hop` frames) and the Pi real-time factors."""
    per_window = window_macs(bundle.meta)
    windows_per_second = 1.0 / (bundle.hop_frames * bundle.features.win_step)
    per_second = per_window["total"] * windows_per_second
    n3 = utterance_windows(bundle, UTTERANCE_SECONDS)
    out = {"macs_per_window": per_window, "windows_per_audio_second": round(windows_per_second, 3),
           "macs_per_audio_second": int(per_second), "windows_per_3s_utterance": n3,
           "macs_per_3s_utterance": per_window["total"] * n3, "assumed_gmacs": PI_GMACS}
    for pi, gmacs in PI_GMACS.items():
        out[f"{pi}_rtf"] = round(per_second / (gmacs * 1e9), 5)
        out[f"{pi}_ms_per_3s"] = round(1000 * per_window["total"] * n3 / (gmacs * 1e9), 2)
    return out


def three_seconds(audio: np.ndarray | None, sr: int) -> np.ndarray:
    """3 s of the given audio (repeated when shorter), or seeded noise when none is given."""
    n = int(UTTERANCE_SECONDS * sr)
    if audio is None:
        return (0.05 * np.random.default_rng(0).standard_normal(n)).astype(np.float32)
    return np.resize(audio, n).astype(np.float32)


def timed(fn: Callable[[], object], reps: int) -> list[float]:
    """Milliseconds of each of `reps` calls, after one warm-up call."""
    fn()
    out = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        out.append(1000 * (time.perf_counter() - t0))
    return out


def per_audio_second(ms: list[float]) -> dict[str, float]:
    """Per-call minimum (the machine's own speed, least disturbed by other load) and median."""
    return {"min": round(min(ms) / UTTERANCE_SECONDS, 4), "median": round(float(np.median(ms)) / UTTERANCE_SECONDS, 4)}


def measure(bundle_dir: Path, runtime: str | None, audio: np.ndarray | None, reps: int) -> dict:
    embedder = Embedder(bundle_dir, threads=1, runtime=runtime)
    clip = three_seconds(audio, embedder.features.sample_rate)
    cfg = embedder.features
    times = timed(lambda: embedder.embed(clip), reps)
    median = float(np.median(times))
    feats = timed(lambda: mfcc(clip, cfg), reps)
    reference = timed(lambda: normalize(reference_cepstra(clip, cfg), cfg), reps)
    matrix = mfcc(clip, cfg)
    model = timed(lambda: embedder.embed_features(matrix), reps)  # windows through TFLite + their Python
    model_macs = pi_estimate(embedder.bundle)["macs_per_3s_utterance"]
    return {"bundle": str(bundle_dir), "quantization": embedder.bundle.quantization,
            "runtime": embedder.runtime.name, "runtime_version": embedder.runtime.version, "threads": 1,
            "reps": reps, "ms_per_3s_median": round(median, 3), "ms_per_3s_min": round(min(times), 3),
            "features_ms_median": round(float(np.median(feats)), 3),
            # the frontend per second of audio, and python_speech_features' computation of the same numbers
            "features_ms_per_audio_s": per_audio_second(feats),
            "features_reference_ms_per_audio_s": per_audio_second(reference),
            "breakdown_ms_per_3s_min": {"features": round(min(feats), 3), "windows": round(min(model), 3),
                                        "rest": round(max(0.0, min(times) - min(feats) - min(model)), 3)},
            "rtf": round(median / 1000 / UTTERANCE_SECONDS, 5),
            "effective_gmacs_here": round(model_macs / (median / 1000) / 1e9, 3),
            "load_average_1min": float(Path("/proc/loadavg").read_text().split()[0]),
            "model_bytes": embedder.bundle.tflite_path.stat().st_size, "pi": pi_estimate(embedder.bundle)}


def cpu_seconds() -> float:
    """User + system CPU time of this process from /proc/self/stat (fields 14 and 15)."""
    fields = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_listening(bundle_dir: Path, seconds: float) -> dict:
    """CPU % of one core used by the real daemon loop fed in real time with `seconds` of room noise
    (-60 dBFS: VAD only) and then of continuous demo speech (VAD, embedding, scoring, events)."""
    from device.config import Config
    from device.daemon import run_daemon
    from device.enroll import Enroller
    from device.sources import FileSource
    from device.store import Store

    n = int(seconds * 16000)
    speech = np.resize(np.concatenate([load_audio(p) for p in sorted(CLIPS.glob("*-test-*.flac"))]), n)
    noise = (1e-3 * np.random.default_rng(0).standard_normal(n)).astype(np.float32)
    out: dict = {"seconds_each": seconds}
    with tempfile.TemporaryDirectory() as tmp:
        cfg = Config(model=str(bundle_dir), store=str(Path(tmp) / "store.db"), policy="eer")
        embedder = Embedder(bundle_dir)
        with Store(cfg.store_path) as store:
            enroller = Enroller.for_store(store, embedder, cfg.override(**{"enroll.consistency": -1e9}), "alan")
            for p in sorted(CLIPS.glob("alan-enroll-*.flac")):
                enroller.add(load_audio(p), p.name)
            enroller.save(store)
        for name, audio in (("idle", noise), ("talking", speech)):
            path = Path(tmp) / f"{name}.wav"
            save_wav(path, audio)
            c0, t0 = cpu_seconds(), time.perf_counter()
            counters = run_daemon(cfg, FileSource(path, cfg.audio.block_ms, realtime=True), threading.Event())
            out[f"{name}_cpu_pct"] = round(100 * (cpu_seconds() - c0) / (time.perf_counter() - t0), 2)
            out[f"{name}_utterances"] = counters.utterances
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bundle", required=True, help="model bundle folder")
    p.add_argument("--runtime", choices=("tflite_runtime", "ai_edge_litert"), help="default: first that imports")
    p.add_argument("--audio", help="a speech file to time on (default: seeded noise)")
    p.add_argument("--reps", type=int, default=50)
    p.add_argument("--cpu-seconds", type=float, default=0, help="also measure daemon CPU %% (seconds per state)")
    p.add_argument("--out", required=True, help="JSON to write")
    a = p.parse_args(argv)
    result = measure(Path(a.bundle), a.runtime, load_audio(a.audio) if a.audio else None, a.reps)
    if a.cpu_seconds:
        result["cpu_listening"] = cpu_listening(Path(a.bundle), a.cpu_seconds)
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: result[k] for k in ("quantization", "runtime", "ms_per_3s_median", "rtf")}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
