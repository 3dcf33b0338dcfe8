"""python -m train --data DIR --out RUN_DIR [options]: train the CNN-LSTM speaker model.

Alone, or as one worker of a cluster when TF_CONFIG names one (docs/TRAINING.md;
scripts/train_distributed.sh --workers N starts N local workers). --batch is the global batch."""

from __future__ import annotations

import argparse
import json
from dataclasses import fields
from pathlib import Path

from device.features import FeatureConfig
from train.datasets import VAL_SHARE, DatasetError, write_seeded_split
from train.model import ModelConfig


def splits_folder(data: str, splits: str | None, run: Path, seed: int) -> Path:
    """--splits, else DATA/splits, else a seeded speaker split written into RUN/splits (a corpus as
    downloaded has no split lists, and the corpus root is never written to)."""
    if splits:
        return Path(splits)
    if (Path(data) / "splits").is_dir():
        return Path(data) / "splits"
    try:
        train, val = write_seeded_split(data, run / "splits", seed)
    except DatasetError as exc:
        raise SystemExit(str(exc)) from None
    print(f"{data} has no splits folder: seeded speaker split (seed {seed}, {VAL_SHARE:.0%} for validation): "
          f"{len(train)} training and {len(val)} validation speakers -> {run / 'splits'}", flush=True)
    return run / "splits"


def main(argv: list[str] | None = None) -> int:
    from train.train import PIPELINES, TrainConfig

    defaults = {f.name: f.default for f in fields(TrainConfig) if f.default is not f.default_factory}
    p = argparse.ArgumentParser(prog="python -m train", description=__doc__)
    p.add_argument("--data", required=True, help="dataset root: folder-per-speaker, LibriSpeech, VoxCeleb (.wav or "
                   ".m4a) or Common Voice layout (train.datasets)")
    p.add_argument("--splits", help="folder with train.txt and val.txt (speaker ids); default DATA/splits, or when "
                   "that is missing a seeded speaker split written into the run folder (OUT/splits)")
    p.add_argument("--out", required=True, help="run folder (config, log, checkpoints, best weights)")
    p.add_argument("--resume", action="store_true", help="continue from the run folder's last checkpoint")
    p.add_argument("--head", choices=["aam", "softmax"], default=ModelConfig.head)
    p.add_argument("--norm", choices=["cmn", "cmvn", "none"], default=FeatureConfig.norm)
    p.add_argument("--pooling", choices=["mean", "stats", "attentive"], default=ModelConfig.pooling,
                   help="temporal pooling of the LSTM outputs; attentive: statistics weighted by a small attention MLP")
    p.add_argument("--conv-blocks", choices=["plain", "residual"], default=ModelConfig.conv_blocks,
                   help="front end: conv-BN-ReLU blocks, or residual blocks of two convs with squeeze-excitation")
    p.add_argument("--n-ceps", type=int, default=FeatureConfig.n_ceps)
    p.add_argument("--embedding-dim", type=int, default=ModelConfig.embedding_dim)
    p.add_argument("--lstm-units", type=int, default=ModelConfig.lstm_units)
    helps = {"batch": "global batch (split over the workers of a cluster)",
             "workers": "augmentation processes of --pipeline bank (per worker of a cluster; the stream "
                      "pipeline sizes its threads itself)"}
    for name in ("epochs", "steps", "batch", "seed", "copies", "heldout", "patience", "window", "hop", "workers"):
        p.add_argument(f"--{name}", type=int, default=defaults[name], help=helps.get(name))
    p.add_argument("--pipeline", choices=PIPELINES, default=defaults["pipeline"],
                   help="bank: decode and augment every item into memory before the first step (--copies fixed "
                        "copies each); stream: read from disk as needed with fresh augmentation at every read, "
                        "memory bounded by buffers (docs/TRAINING.md, 'Streaming from disk')")
    p.add_argument("--lr", type=float, default=defaults["lr"])
    p.add_argument("--max-minutes", type=float, default=defaults["max_minutes"],
                   help="stop after this many minutes of training steps (the clock starts at the first step, after "
                        "the augmentation bank if any); default: no budget, the epochs and early stopping decide")
    p.add_argument("--speeds", default=",".join(map(str, defaults["speeds"])),
                   help="fixed resampling warps, each a new pseudo-speaker of every recorded voice")
    p.add_argument("--val-data", default="", help="take validation speakers from this set (e.g. data/dev)")
    p.add_argument("--val-split", default="val", help="split of the validation set (the dev set's: calib)")
    p.add_argument("--channel-p", type=float, default=defaults["channel_p"],
                   help="share of augmented copies through a room, codec or cheap microphone")
    p.add_argument("--spec-augment", action="store_true",
                   help="mask time spans and cepstral bands of every training crop (never in the exported model)")
    p.add_argument("--mask-time", type=int, default=defaults["mask_time"],
                   help="with --spec-augment: widest time mask in frames (two per crop)")
    p.add_argument("--mask-freq", type=int, default=defaults["mask_freq"],
                   help="with --spec-augment: widest band of cepstral coefficients masked (two per crop)")
    p.add_argument("--teacher", default="", help="npz of teacher embeddings per training item (python -m train.teacher), "
                   "or several comma-separated (its --shard runs): adds an InfoNCE distillation term")
    p.add_argument("--distill-weight", type=float, default=defaults["distill_weight"],
                   help="weight of the distillation term beside the speaker loss")
    p.add_argument("--distill-temp", type=float, default=defaults["distill_temp"],
                   help="temperature of the distillation term's softmax over the batch")
    a = p.parse_args(argv)

    run = Path(a.out)
    if a.resume and (run / "config.json").exists():
        saved = json.loads((run / "config.json").read_text())
        for key in ("speeds", "drawn_speeds"):
            saved[key] = tuple(saved.get(key, TrainConfig.__dataclass_fields__[key].default))
        cfg = TrainConfig(**saved)
        cfg.epochs = a.epochs  # resuming may extend the schedule
    else:
        mcfg = ModelConfig(n_ceps=a.n_ceps, embedding_dim=a.embedding_dim, lstm_units=a.lstm_units, head=a.head,
                           pooling=a.pooling, conv_blocks=a.conv_blocks)
        fcfg = FeatureConfig(norm=a.norm, n_ceps=a.n_ceps)
        cfg = TrainConfig(data=a.data, splits=str(splits_folder(a.data, a.splits, run, a.seed)), out=a.out,
                          epochs=a.epochs, steps=a.steps, batch=a.batch, lr=a.lr, seed=a.seed, copies=a.copies,
                          heldout=a.heldout, patience=a.patience, max_minutes=a.max_minutes, window=a.window,
                          hop=a.hop, workers=a.workers, features=fcfg.to_dict(), model=mcfg.to_dict(),
                          speeds=tuple(float(x) for x in a.speeds.split(",")), val_data=a.val_data,
                          val_split=a.val_split, channel_p=a.channel_p, spec_augment=a.spec_augment,
                          mask_time=a.mask_time, mask_freq=a.mask_freq, teacher=a.teacher, pipeline=a.pipeline,
                          distill_weight=a.distill_weight, distill_temp=a.distill_temp)
    from train.keras_env import tf
    from train.train import Trainer

    try:
        Trainer(cfg, resume=a.resume).fit()
    except tf.errors.UnavailableError:  # a peer stopped answering (TensorFlow's heartbeats or a lost connection)
        raise SystemExit(f"another worker of the cluster stopped; restart every worker with --resume to continue "
                         f"from {run / 'ckpt'}") from None
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
