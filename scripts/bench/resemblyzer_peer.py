"""Resemblyzer (GE2E, 3x256 LSTM on 40 log-mels) as a benchmark peer. Runs inside .venv-peers.

Embeds every file the trial lists in --trials-dir name (relative to --data) with the peer's own
pipeline (`preprocess_wav`: resample, volume normalisation, webrtcvad silence trimming; then
`embed_utterance`) and writes `<out>.npz` (paths, vectors) for scoring with the project's metrics in .venv-train, plus
`<out>.json` with the single-thread time per 3-s utterance (preprocessing + embedding).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import resemblyzer
import soundfile as sf
import torch
from resemblyzer import VoiceEncoder, preprocess_wav

from scripts.bench.trials import load_trials, trial_files

SR = 16000


def three_seconds(path: Path) -> np.ndarray:
    """The first 3 s of a file's audio (repeated when shorter) as 16 kHz float32."""
    audio, sr = sf.read(str(path), dtype="float32", always_2d=True)
    audio = audio.mean(axis=1)
    if sr != SR:
        audio = preprocess_wav(audio, source_sr=sr, normalize=False, trim_silence=False)
    return np.resize(audio, 3 * SR).astype(np.float32)


def time_utterance(encoder: VoiceEncoder, audio: np.ndarray, reps: int) -> list[float]:
    """Wall milliseconds of preprocess + embed for `reps` runs after one warm-up."""
    times = []
    for i in range(reps + 1):
        t0 = time.perf_counter()
        encoder.embed_utterance(preprocess_wav(audio, source_sr=SR))
        if i:
            times.append(1000 * (time.perf_counter() - t0))
    return times


def macs_per_utterance(encoder: VoiceEncoder, audio: np.ndarray) -> int:
    """Multiply-accumulates of embed_utterance on `audio` after preprocessing: LSTM gates and the
    output projection for every frame of every 1.6-s partial it slides over the utterance."""
    _, mel_slices = encoder.compute_partial_slices(len(preprocess_wav(audio, source_sr=SR)), 1.3, 0.75)
    frames = sum(s.stop - s.start for s in mel_slices)
    lstm = encoder.lstm
    per_frame = sum(4 * lstm.hidden_size * (n_in + lstm.hidden_size)
                    for n_in in [lstm.input_size] + [lstm.hidden_size] * (lstm.num_layers - 1))
    return int(frames * per_frame) + len(mel_slices) * encoder.linear.in_features * encoder.linear.out_features


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="corpus root the trial paths are relative to")
    p.add_argument("--trials-dir", help="where trials_<condition>.txt are (default: --data)")
    p.add_argument("--out", required=True, help="output stem: writes OUT.npz and OUT.json")
    p.add_argument("--reps", type=int, default=20, help="timed runs on a 3-s utterance")
    a = p.parse_args(argv)
    torch.set_num_threads(1)
    encoder = VoiceEncoder("cpu", verbose=False)
    paths = trial_files(load_trials(Path(a.trials_dir or a.data)), Path(a.data))
    vectors = []
    t0 = time.perf_counter()
    for path in paths:
        vectors.append(encoder.embed_utterance(preprocess_wav(path)))
    embed_seconds = time.perf_counter() - t0
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(out.with_suffix(".npz"), paths=np.array([str(x) for x in paths]), vectors=np.stack(vectors))
    clip = three_seconds(paths[0])
    times = time_utterance(encoder, clip, a.reps)
    weights = Path(resemblyzer.__file__).with_name("pretrained.pt")
    info = {"system": "resemblyzer", "version": "0.1.4", "torch": torch.__version__, "threads": 1,
            "n_files": len(paths), "embed_all_seconds": round(embed_seconds, 2),
            "ms_per_3s_median": round(float(np.median(times)), 3), "ms_per_3s_min": round(min(times), 3),
            "reps": a.reps, "macs_per_3s_utterance": macs_per_utterance(encoder, clip), "weights_bytes": weights.stat().st_size,
            "parameters": int(sum(t.numel() for t in encoder.parameters()))}
    out.with_suffix(".json").write_text(json.dumps(info, indent=2) + "\n")
    print(json.dumps(info))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
