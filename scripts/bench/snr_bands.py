"""What a threshold conditioned on the measured signal-to-noise ratio would be worth (run in .venv-train):

    python -m scripts.bench.snr_bands --model models/default --dev data/dev [--fit calib] [--read report] [--json J]

Today's `score_calibration` holds every false-accept rate in the worst condition family, because the
device does not condition on how noisy an attempt is. But it measures that: `device.vad.snr_db` of
every utterance. This scores single-recording trials of the clean, noisy and channel conditions by
cosine (one enrolment recording against one test recording, as the trial lists pair them), measures
each test recording's SNR the device's way, and compares, per SNR band of the pooled trials, the
genuine acceptance at a threshold fitted within the band (the band's non-targets at far 1 %) with
that at the one threshold fitted on clean trials. Thresholds are fitted on one half (`--fit`) and read
on the other (`--read`), as the bundle's calibration is.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from device.audio import load_audio
from device.config import VadConfig
from device.embedder import Embedder
from device.vad import frame_labels, snr_db
from export.calibrate import tail_threshold
from train.datasets import read_trials

CONDITIONS = ("clean", "noisy", "channel")
BANDS = ((-np.inf, 10.0), (10.0, 20.0), (20.0, 30.0), (30.0, np.inf))  # dB
FAR = 0.01


def measure(embedder: Embedder, path: Path) -> tuple[np.ndarray, float]:
    """The unit embedding and the device's SNR estimate (dB; -inf when nothing is voiced)."""
    audio = load_audio(path)
    vector = embedder.embed_audio(audio).vector
    frames, voiced = frame_labels(audio, VadConfig().aggressiveness)  # the device's default
    snr = snr_db(frames, voiced)
    return vector / np.linalg.norm(vector), -np.inf if snr is None else snr


def scored(embedder: Embedder, dev: Path, half: str) -> dict[str, dict[str, np.ndarray]]:
    """{condition: labels, scores, test SNRs} of the half's single-recording trials."""
    seen: dict[str, tuple[np.ndarray, float]] = {}
    out = {}
    for condition in CONDITIONS:
        trials = read_trials(dev / "trials" / half / f"{condition}.txt")
        labels, scores, snrs = [], [], []
        for label, enrol, test in trials:
            for f in (enrol, test):
                if f not in seen:
                    seen[f] = measure(embedder, dev / f)
            labels.append(label)
            scores.append(float(seen[enrol][0] @ seen[test][0]))
            snrs.append(seen[test][1])
        out[condition] = {"labels": np.array(labels), "scores": np.array(scores), "snr": np.array(snrs)}
    return out


def accepted(scores: np.ndarray, labels: np.ndarray, threshold: float) -> float:
    return round(100 * float(np.mean(scores[labels == 1] >= threshold)), 1)


def false_accepts(scores: np.ndarray, labels: np.ndarray, threshold: float) -> float:
    return round(100 * float(np.mean(scores[labels == 0] >= threshold)), 2)


def pooled_band(trials: dict[str, dict[str, np.ndarray]], lo: float, hi: float) -> tuple[np.ndarray, np.ndarray]:
    """(labels, scores) of every condition's trials whose test SNR is in [lo, hi)."""
    pooled = {k: np.concatenate([t[k] for t in trials.values()]) for k in ("labels", "scores", "snr")}
    inside = (pooled["snr"] >= lo) & (pooled["snr"] < hi)
    return pooled["labels"][inside], pooled["scores"][inside]


def bands(fit: dict[str, dict[str, np.ndarray]], read: dict[str, dict[str, np.ndarray]]) -> dict:
    clean = fit["clean"]
    clean_threshold = tail_threshold(clean["scores"][clean["labels"] == 0], FAR)
    rows = []
    for lo, hi in BANDS:
        fit_labels, fit_scores = pooled_band(fit, lo, hi)
        own = tail_threshold(fit_scores[fit_labels == 0], FAR)
        labels, scores = pooled_band(read, lo, hi)
        rows.append({"snr_db": [lo, hi], "targets": int((labels == 1).sum()), "nontargets": int((labels == 0).sum()),
                     "threshold": round(own, 4), "genuine_accepted": accepted(scores, labels, own),
                     "false_accepts": false_accepts(scores, labels, own),
                     "genuine_accepted_at_clean_threshold": accepted(scores, labels, clean_threshold),
                     "false_accepts_at_clean_threshold": false_accepts(scores, labels, clean_threshold)})
    snr_percentiles = {c: np.round(np.percentile(t["snr"], [5, 25, 50, 75, 95]), 1).tolist() for c, t in read.items()}
    return {"far": FAR, "clean_threshold": round(clean_threshold, 4), "test_snr_percentiles_5_25_50_75_95": snr_percentiles,
            "bands": rows}


def markdown(result: dict) -> str:
    lines = ["| test SNR (dB) | targets / non-targets | band threshold | genuine / strangers accepted | "
             f"at the clean threshold {result['clean_threshold']} |", "|---|---|---|---|---|"]
    for r in result["bands"]:
        lo, hi = r["snr_db"]
        lines.append(f"| {lo:g} to {hi:g} | {r['targets']} / {r['nontargets']} | {r['threshold']} | "
                     f"{r['genuine_accepted']} / {r['false_accepts']} % | "
                     f"{r['genuine_accepted_at_clean_threshold']} / {r['false_accepts_at_clean_threshold']} % |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", type=Path, default=Path("models/default"))
    p.add_argument("--dev", type=Path, default=Path("data/dev"))
    p.add_argument("--fit", default="calib", help="the half the thresholds are fitted on")
    p.add_argument("--read", default="report", help="the half they are read on")
    p.add_argument("--json", type=Path)
    a = p.parse_args(argv)
    embedder = Embedder(a.model)
    fit, read = scored(embedder, a.dev, a.fit), scored(embedder, a.dev, a.read)
    result = {"model": str(a.model), "fit": a.fit, "read": a.read, **bands(fit, read)}
    if a.json:
        a.json.write_text(json.dumps(result, indent=1))
    print(markdown(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
