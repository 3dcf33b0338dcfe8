"""python -m export --run RUN_DIR --out models/NAME --quant {float32,float16,dynamic,int8}

Converts a training run's best weights to a TFLite bundle, calibrates thresholds and the AS-norm
cohort through the device embedder, then checks the written bundle in every device runtime
(ai-edge-litert 1.4.0, the Pi's, and the fallback tflite-runtime 2.14, both with numpy<2) against the Keras model before declaring
success. Parity and EER per runtime land in model.json.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from device.bundle import BUNDLE_SCHEMA, Bundle, sha256_file
from device.embedder import Embedder, window_starts
from device.features import FeatureConfig, mfcc
from device.scoring import Scorer
from export.calibrate import choose, cohort_embeddings, dev_calibration, dev_cohort, legacy_thresholds, validation_scores
from export.convert import MODES, convert
from export.ops import check_ops, read_ops
from train.corpus_audio import load_audio
from train.datasets import read_trials, speaker_utterances
from train.evaluate import score_trials
from train.extract import KerasEmbedder
from train.metrics import summary
from train.model import ModelConfig, build_embedder

REPO = Path(__file__).resolve().parent.parent
RUNTIME_VENVS = {"ai_edge_litert": REPO / ".venv-device", "tflite_runtime": REPO / ".venv-tflite"}
# the versions the Pi installs (requirements-device.txt, scripts/fallback-runtime.txt)
MIN_RUNTIME = {"ai_edge_litert": "1.4.0", "tflite_runtime": "2.14.0"}
PARITY_MIN = {"float32": 0.995, "float16": 0.995, "dynamic": 0.995, "int8": 0.99}
TRIAL_LISTS = ("trials_clean.txt", "trials_noisy.txt", "trials_short.txt")


class ExportError(RuntimeError):
    """The written bundle failed a check; nothing is installed at --out."""


def representative(paths: list[Path], cfg: FeatureConfig, frames: int, hop: int, n: int = 200):
    windows = []
    for p in paths:
        feats = mfcc(load_audio(p), cfg)
        if feats.shape[0] >= frames:
            windows += [feats[s:s + frames] for s in window_starts(feats.shape[0], frames, hop)]
        if len(windows) >= n:
            break

    def gen():
        for w in windows[:n]:
            yield [w[None].astype(np.float32)]
    return gen


def run_in_venv(runtime: str, bundle: Path, files: list[Path], work: Path) -> tuple[np.ndarray, dict]:
    venv = RUNTIME_VENVS[runtime]
    python = venv / "bin" / "python"
    if not python.exists():
        raise ExportError(f"export check: {venv} is missing; run scripts/setup_venvs.sh device tflite")
    listing = work / "files.txt"
    listing.write_text("\n".join(str(f) for f in files) + "\n")
    out = work / f"{runtime}.npz"
    proc = subprocess.run([str(python), "-m", "export.device_probe", "--bundle", str(bundle), "--files", str(listing),
                           "--out", str(out), "--runtime", runtime], cwd=REPO, capture_output=True, text=True)
    if proc.returncode != 0:
        raise ExportError(f"export check failed: {runtime} could not run {bundle}:\n{proc.stderr[-1500:]}")
    return np.load(out)["vectors"], json.loads(out.with_suffix(".json").read_text())


def trial_eers(vectors: dict[Path, np.ndarray], data: Path, cohort: np.ndarray, top_k: int) -> dict:

    out = {}
    for name in TRIAL_LISTS:
        if (data / name).exists():
            labels, raw, norm = score_trials(read_trials(data / name), data, vectors, Scorer(cohort, top_k))
            s, n = summary(labels, raw), summary(labels, norm)
            out[name.removeprefix("trials_").removesuffix(".txt")] = {
                "eer": s["eer"], "min_dcf_p01": s["min_dcf_p01"], "asnorm_eer": n["eer"], "asnorm_min_dcf_p01": n["min_dcf_p01"]}
    return out


def export(run: Path, out: Path, quant: str, data: Path | None, splits: Path | None, int8_fallback: bool,
           check_runtimes: tuple[str, ...], parity_min: float, top_k: int = 50, dev: Path | None = None) -> dict:
    t0 = time.time()
    cfg = json.loads((run / "config.json").read_text())
    data = data or Path(cfg["data"])
    splits = splits or Path(cfg["splits"])
    fcfg, mcfg = FeatureConfig.from_dict(cfg["features"]), ModelConfig.from_dict(cfg["model"])
    frames, hop = cfg["window"], cfg["hop"]
    train_spk = speaker_utterances(data, splits, "train")
    val_spk = speaker_utterances(data, splits, "val")

    model = build_embedder(mcfg, frames=frames, batch_size=1)
    model.load_weights(str(run / "best.weights.h5"))
    rep_paths = [p for paths in train_spk.values() for p in paths[:2]]
    tflite = convert(model, quant, representative(rep_paths, fcfg, frames, hop), int8_fallback)
    ops = read_ops(tflite)
    check_ops(ops)

    out.mkdir(parents=True, exist_ok=True)
    (out / "model.tflite").write_bytes(tflite)
    meta = {
        "schema": BUNDLE_SCHEMA, "name": out.name, "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "tflite": "model.tflite", "sha256": sha256_file(out / "model.tflite"), "size_bytes": len(tflite),
        "quantization": quant, "features": fcfg.to_dict(), "window": {"frames": frames, "hop": hop},
        "embedding_dim": mcfg.embedding_dim, "model": mcfg.to_dict(), "ops": ops, "min_runtime": MIN_RUNTIME,
        "trained_on": {"data": str(data), "splits": str(splits), "n_train_speakers": len(train_spk),
                       "speakers": sorted(train_spk),  # so tests and demos can prove they use other voices
                       "run": str(run), "run_metrics": _read_json(run / "metrics.json")},
        "policy_default": "far1",
    }
    (out / "model.json").write_text(json.dumps(meta, indent=2))
    embedder = Embedder(out)
    io = {"input": embedder.input_details, "output": embedder.output_details}
    meta["io"] = {k: {"dtype": np.dtype(v["dtype"]).name, "scale": float(v["quantization"][0]),
                      "zero_point": int(v["quantization"][1])} for k, v in io.items()}

    cohort = cohort_embeddings(embedder, train_spk)
    owners = ["training voice"] * len(cohort)
    if dev is not None:
        extra, extra_owners = dev_cohort(embedder, dev)
        cohort, owners = np.concatenate([cohort, extra]), owners + extra_owners
    np.save(out / "cohort.npy", cohort)
    meta["cohort"] = {"file": "cohort.npy", "sha256": sha256_file(out / "cohort.npy"), "n": int(cohort.shape[0]),
                      "top_k": top_k, "dtype": "float16", "training_voices": owners.count("training voice"),
                      "dev_pseudo_speakers": len(owners) - owners.count("training voice")}
    if dev is not None:
        meta["score_calibration"], meta["calibration_report"], meta["thresholds"] = dev_calibration(
            embedder, dev, cohort, owners, top_k)
        meta["calibrated_on"] = {"dev": str(dev), "half": "calib", "trials": meta["calibration_report"]["trials"]}
    else:
        labels, cos, asn = validation_scores(embedder, val_spk, Scorer(cohort.astype(np.float32), top_k))
        meta["calibrated_on"] = {"data": str(data), "split": "val", "trials": int(labels.size)}
        calibration, meta["calibration_report"] = choose(labels, cos, asn)
        meta["score_calibration"] = calibration.to_dict()
        meta["thresholds"] = legacy_thresholds(labels, cos, asn)
    (out / "model.json").write_text(json.dumps(meta, indent=2))

    meta["checks"] = check_bundle(run, out, parity_min, data, check_runtimes, cohort.astype(np.float32), top_k)
    meta["export_seconds"] = round(time.time() - t0, 1)
    (out / "model.json").write_text(json.dumps(meta, indent=2))
    Bundle.load(out)  # what the device will do
    return meta


def check_bundle(run: Path, out: Path, parity_min: float, data: Path, runtimes: tuple[str, ...], cohort: np.ndarray,
                 top_k: int) -> dict:
    """Embeddings of every trial file in each device runtime vs the Keras model."""
    files: list[Path] = []
    for name in TRIAL_LISTS:
        if (data / name).exists():
            files += [data / p for t in read_trials(data / name) for p in t[1:]]
    files = list(dict.fromkeys(files))
    if not files:
        return {}
    keras_vecs, _ = KerasEmbedder.from_run(run).embed_files(files[:120])
    checks = {"n_parity_files": min(len(files), 120), "parity_min_required": parity_min}
    with tempfile.TemporaryDirectory() as tmp:
        for runtime in runtimes:
            vecs, info = run_in_venv(runtime, out, files, Path(tmp))
            cos = np.sum(vecs[:len(keras_vecs)] * keras_vecs, axis=1)
            result = {**info, "parity_median": round(float(np.median(cos)), 5), "parity_min": round(float(cos.min()), 5),
                      "trials": trial_eers(dict(zip(files, vecs)), data, cohort, top_k)}
            checks[runtime] = result
            print(f"{runtime} {info['version']}: parity median {result['parity_median']} min {result['parity_min']}; "
                  f"{json.dumps(result['trials'])}")
            if cos.min() < parity_min:
                raise ExportError(f"export refused: {runtime} embeddings differ from Keras (min cosine {cos.min():.4f} "
                                 f"< {parity_min})")
    return checks


def _read_json(path: Path) -> dict:
    return json.loads(path.read_text()) if path.exists() else {}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m export", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", required=True, help="training run folder")
    p.add_argument("--out", required=True, help="bundle folder to write, e.g. models/default")
    p.add_argument("--quant", choices=MODES, default="dynamic")
    p.add_argument("--data", help="dataset root (default: the run's)")
    p.add_argument("--splits", help="splits folder (default: the run's)")
    p.add_argument("--dev", help="development set (data/dev): calibrate decisions on its calibration half "
                                 "(default: the corpus's validation speakers)")
    p.add_argument("--int8-fallback", action="store_true", help="allow float ops where int8 conversion fails")
    p.add_argument("--parity-min", type=float,
                   help="minimum cosine to the Keras embeddings (default: 0.995, 0.99 for int8)")
    p.add_argument("--runtimes", default="ai_edge_litert,tflite_runtime",
                   help="device runtimes to check the bundle in (comma-separated; 'none' to skip)")
    a = p.parse_args(argv)
    runtimes = tuple(r for r in a.runtimes.split(",") if r and r != "none")
    out = Path(a.out)
    tmp_out = out.with_name(out.name + ".partial")
    shutil.rmtree(tmp_out, ignore_errors=True)
    try:
        meta = export(Path(a.run), tmp_out, a.quant, Path(a.data) if a.data else None,
                      Path(a.splits) if a.splits else None, a.int8_fallback, runtimes,
                      a.parity_min if a.parity_min is not None else PARITY_MIN[a.quant],
                      dev=Path(a.dev) if a.dev else None)
    except Exception as exc:  # conversion, op gate, runtime checks: report, leave no half bundle
        print(f"export failed: {exc}", file=sys.stderr)
        shutil.rmtree(tmp_out, ignore_errors=True)
        return 1
    meta["name"] = out.name
    (tmp_out / "model.json").write_text(json.dumps(meta, indent=2))
    if (out / "MODEL_CARD.md").is_file():  # written by people, not by the export: it stays
        shutil.copy2(out / "MODEL_CARD.md", tmp_out / "MODEL_CARD.md")
    shutil.rmtree(out, ignore_errors=True)
    tmp_out.rename(out)
    print(f"wrote {out} ({meta['size_bytes'] / 1024:.0f} KB, {a.quant}, ops {[o['name'] for o in meta['ops']]})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
