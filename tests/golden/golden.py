"""Golden vectors for the device frontend and the shipped model, in the manner of TFLite's
micro_speech tests: a committed clip (`clip.flac`, an RHVoice voice, so not a training speaker of a
model trained on MBROLA + espeak-ng voices), its expected MFCC matrix (`mfcc.npy`, what the model
sees) and its expected `models/default` embedding (`embedding.npy`), made in .venv-device
(ai-edge-litert 1.4.0, the Pi's runtime) by scripts/make_golden.sh. `golden.json` records what they were made from.

Needs only the device requirements (numpy, soundfile, the device package and a TFLite runtime), so
the same check runs in both device venvs and in the arm64 root of scripts/pi_check.sh:

    python tests/golden/golden.py check                 # exit 1 with the reasons when off
    python tests/golden/golden.py make [--model DIR]    # rewrite the expected files
    python tests/golden/golden.py embed --out x.npz CLIP...   # embeddings of clips (pi_check)
    python tests/golden/golden.py compare --min-cosine 0.999 a.npz b.npz
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
if str(REPO) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(REPO))

from device.audio import load_audio  # noqa: E402
from device.embedder import Embedder  # noqa: E402
from device.features import mfcc  # noqa: E402

CLIP = HERE / "clip.flac"
MFCC = HERE / "mfcc.npy"
EMBEDDING = HERE / "embedding.npy"
META = HERE / "golden.json"
MODEL = REPO / "models" / "default"
MFCC_RTOL = 1e-4  # relative to the matrix's largest magnitude (CMN puts many values near 0)
MIN_COSINE = 0.999


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def compute(model: Path = MODEL, clip: Path = CLIP, runtime: str | None = None) -> tuple[np.ndarray, np.ndarray, Embedder]:
    """(MFCC matrix, unit embedding, the embedder) of `clip` with `model`'s frontend and network."""
    embedder = Embedder(model, runtime=runtime)
    audio = load_audio(clip)
    return mfcc(audio, embedder.features), embedder.embed(audio), embedder


def make(model: Path = MODEL) -> dict:
    feats, emb, embedder = compute(model)
    np.save(MFCC, feats.astype(np.float32))
    np.save(EMBEDDING, emb.astype(np.float32))
    meta = {"clip": CLIP.name, "clip_sha256": sha256(CLIP), "model_sha256": sha256(embedder.bundle.tflite_path),
            "features": embedder.features.to_dict(), "mfcc_shape": list(feats.shape),
            "embedding_dim": int(emb.shape[0]), "made_with": f"{embedder.runtime.name} {embedder.runtime.version}",
            "mfcc_rtol": MFCC_RTOL, "min_cosine": MIN_COSINE}
    META.write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    return meta


def mfcc_error(got: np.ndarray, want: np.ndarray) -> float:
    """Largest elementwise difference relative to the largest expected magnitude."""
    return float(np.max(np.abs(got - want)) / np.max(np.abs(want)))


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))


def check(model: Path = MODEL, runtime: str | None = None) -> tuple[list[str], dict]:
    """(problems, measurements); no problems means the device reproduces the golden vectors."""
    meta = json.loads(META.read_text())
    feats, emb, embedder = compute(model, runtime=runtime)
    want_mfcc, want_emb = np.load(MFCC), np.load(EMBEDDING)
    problems = []
    if sha256(CLIP) != meta["clip_sha256"]:
        problems.append(f"{CLIP.name} is not the clip the vectors were made from")
    if sha256(embedder.bundle.tflite_path) != meta["model_sha256"]:
        problems.append(f"{model} is not the model the vectors were made from: run scripts/make_golden.sh")
    measured = {"runtime": f"{embedder.runtime.name} {embedder.runtime.version}", "mfcc_shape": list(feats.shape)}
    if feats.shape != want_mfcc.shape:
        problems.append(f"MFCC shape {feats.shape}, expected {want_mfcc.shape}")
    else:
        measured["mfcc_rel_error"] = err = mfcc_error(feats, want_mfcc)
        if err > MFCC_RTOL:
            problems.append(f"MFCC off by {err:.2e} of its scale (allowed {MFCC_RTOL:.0e})")
    if emb.shape != want_emb.shape:
        problems.append(f"embedding shape {emb.shape}, expected {want_emb.shape}")
    else:
        measured["cosine"] = cos = cosine(emb, want_emb)
        if cos < MIN_COSINE:
            problems.append(f"embedding cosine {cos:.5f} to the golden one (needs >= {MIN_COSINE})")
    return problems, measured


def embed_clips(paths: list[Path], out: Path, model: Path = MODEL) -> None:
    embedder = Embedder(model)
    np.savez(out, **{p.name: embedder.embed(load_audio(p)) for p in paths})


def compare(a: Path, b: Path, min_cosine: float) -> list[str]:
    """Problems between two `embed` outputs: missing clips or a cosine under `min_cosine`."""
    x, y = np.load(a), np.load(b)
    if set(x.files) != set(y.files):
        return [f"different clips: {sorted(set(x.files) ^ set(y.files))}"]
    cos = {k: cosine(x[k], y[k]) for k in sorted(x.files)}
    print(f"golden: {len(cos)} clips, cosine min {min(cos.values()):.6f} mean {np.mean(list(cos.values())):.6f}",
          file=sys.stderr)
    return [f"{k}: cosine {c:.5f} < {min_cosine}" for k, c in cos.items() if c < min_cosine]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    for name in ("make", "check"):
        s = sub.add_parser(name)
        s.add_argument("--model", type=Path, default=MODEL)
    e = sub.add_parser("embed")
    e.add_argument("--model", type=Path, default=MODEL)
    e.add_argument("--out", type=Path, required=True)
    e.add_argument("clips", nargs="+", type=Path)
    c = sub.add_parser("compare")
    c.add_argument("--min-cosine", type=float, default=MIN_COSINE)
    c.add_argument("a", type=Path)
    c.add_argument("b", type=Path)
    args = p.parse_args(argv)
    if args.cmd == "make":
        meta = make(args.model)
        print(f"golden: MFCC {meta['mfcc_shape']} and embedding ({meta['embedding_dim']},) of {CLIP.name} "
              f"with {args.model} ({meta['made_with']})")
        return 0
    if args.cmd == "check":
        problems, measured = check(args.model)
        print("golden:", json.dumps(measured), file=sys.stderr)
        for problem in problems:
            print("golden: FAIL:", problem, file=sys.stderr)
        return 1 if problems else 0
    if args.cmd == "embed":
        embed_clips(args.clips, args.out, args.model)
        return 0
    problems = compare(args.a, args.b, args.min_cosine)
    for problem in problems:
        print("golden: FAIL:", problem, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
