"""The training loop: seeded, checkpointed, resumable, early-stopped on validation EER.

A run folder holds config.json, classes.json, log.csv, ckpt/ (resume), best.weights.h5 (the
embedder with the best validation EER) and metrics.json.
"""

from __future__ import annotations

import csv
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from sklearn.metrics import accuracy_score, f1_score
from tqdm import tqdm

from device.audio import load_audio
from device.features import FeatureConfig, mfcc
from train.augment import noisy_trial_version
from train.data import CropSampler, Item, build_bank, speaker_utterances
from train.espeak_voices import DRAWN_PREFIX
from train.extract import KerasEmbedder
from train.keras_env import keras, tf
from train.metrics import eer
from train.model import ModelConfig, SpeakerHead, build_embedder


@dataclass
class TrainConfig:
    data: str
    splits: str
    out: str
    epochs: int = 22
    steps: int = 100
    batch: int = 64
    lr: float = 2e-3
    seed: int = 0
    copies: int = 4
    # Fixed resampling warps, each one a new pseudo-speaker of every recorded voice (pitch and
    # vocal-tract length move together). Drawn voices (DRAWN_PREFIX) are new people already.
    speeds: tuple[float, ...] = (1.0, 0.9, 1.1)
    drawn_speeds: tuple[float, ...] = (1.0,)
    val_data: str = ""  # validation speakers from this set's `val_split` (the dev set's calibration half)
    val_split: str = "val"
    channel_p: float = 0.0  # share of augmented copies that also go through a room, codec or cheap microphone
    heldout: int = 2  # utterances per training speaker kept for closed-set accuracy / F1
    patience: int = 6
    max_minutes: float = 20.0
    window: int = 200
    hop: int = 100
    workers: int = 2
    features: dict = field(default_factory=lambda: FeatureConfig().to_dict())
    model: dict = field(default_factory=lambda: ModelConfig().to_dict())


def prepare(cfg: TrainConfig) -> tuple[list[Item], list[tuple[str, float]], list[tuple[Path, int]], dict[str, list[Path]]]:
    """Training items (speed-perturbed pseudo-speakers), classes, held-out items, val utterances."""
    train_utts = speaker_utterances(cfg.data, cfg.splits, "train")
    classes: list[tuple[str, float]] = []
    items: list[Item] = []
    heldout: list[tuple[Path, int]] = []
    for spk, paths in train_utts.items():
        keep, held = paths[: len(paths) - cfg.heldout], paths[len(paths) - cfg.heldout:]
        for spd in cfg.drawn_speeds if spk.startswith(DRAWN_PREFIX) else cfg.speeds:
            classes.append((spk, spd))
            items += [Item(p, len(classes) - 1, spd) for p in keep]
            if spd == 1.0:
                heldout += [(p, len(classes) - 1) for p in held]
    if cfg.val_data:
        return items, classes, heldout, speaker_utterances(cfg.val_data, Path(cfg.val_data) / "splits", cfg.val_split)
    return items, classes, heldout, speaker_utterances(cfg.data, cfg.splits, cfg.val_split)


class Trainer:
    def __init__(self, cfg: TrainConfig, resume: bool = False) -> None:
        self.cfg, self.run = cfg, Path(cfg.out)
        self.run.mkdir(parents=True, exist_ok=True)
        tf.keras.utils.set_random_seed(cfg.seed)
        keras.utils.set_random_seed(cfg.seed)
        self.features = FeatureConfig.from_dict(cfg.features)
        self.mcfg = ModelConfig.from_dict(cfg.model)
        self.items, self.classes, self.heldout, self.val = prepare(cfg)
        if not self.items or len(self.val) < 2:
            raise SystemExit(f"{cfg.splits}: need training speakers and at least 2 validation speakers "
                             f"with audio under {cfg.data}")
        self.embedder = build_embedder(self.mcfg)
        self.head = SpeakerHead(len(self.classes), self.mcfg.head, self.mcfg.margin, self.mcfg.scale, name="head")
        self.head.build((None, self.mcfg.embedding_dim))
        self.opt = keras.optimizers.Adam(cfg.lr)
        self.epoch = tf.Variable(0, dtype=tf.int64)
        self.best = tf.Variable(np.inf, dtype=tf.float64)
        self.bad_epochs = tf.Variable(0, dtype=tf.int64)
        ckpt = tf.train.Checkpoint(embedder=self.embedder, head=self.head, opt=self.opt, epoch=self.epoch,
                                   best=self.best, bad_epochs=self.bad_epochs)
        self.manager = tf.train.CheckpointManager(ckpt, str(self.run / "ckpt"), max_to_keep=2)
        if resume and self.manager.latest_checkpoint:
            ckpt.restore(self.manager.latest_checkpoint)
            print(f"resumed from {self.manager.latest_checkpoint} (epoch {int(self.epoch)})")
        self._write_config()

    def _write_config(self) -> None:
        (self.run / "config.json").write_text(json.dumps(vars(self.cfg), indent=2, default=list))
        (self.run / "classes.json").write_text(json.dumps([{"speaker": s, "speed": v} for s, v in self.classes], indent=1))

    @tf.function(reduce_retracing=True)
    def _step(self, x, y):
        with tf.GradientTape() as tape:
            emb = self.embedder(x, training=True)
            logits = self.head(emb, labels=y)
            loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(y, logits))
        variables = self.embedder.trainable_variables + self.head.trainable_variables
        self.opt.apply_gradients(zip(tape.gradient(loss, variables), variables))
        acc = tf.reduce_mean(tf.cast(tf.equal(tf.argmax(logits, -1, output_type=tf.int32), y), tf.float32))
        return loss, acc

    def fit(self) -> dict:
        c = self.cfg
        start = time.time()
        voices = len({s for s, _ in self.classes})
        print(f"{len(self.classes)} classes ({voices} voices; warps {c.speeds}, drawn voices {c.drawn_speeds}), "
              f"{len(self.items)} utterances, {len(self.val)} validation speakers")
        babble = [it.path for it in self.items if it.speed == 1.0]
        bank = build_bank(self.items, self.features, c.copies, c.seed, c.workers, babble, c.channel_p,
                          progress=lambda it, total: tqdm(it, total=total, desc="augmenting", leave=False, disable=None))
        labels = np.array([it.label for it in self.items], dtype=np.int32)
        sampler = CropSampler(bank, labels, self.features, c.seed + int(self.epoch))
        val_sets = self._validation_sets()
        log_path = self.run / "log.csv"
        new_log = not log_path.exists()
        with open(log_path, "a", newline="") as logf:
            log = csv.writer(logf)
            if new_log:
                log.writerow(["epoch", "loss", "train_acc", "val_eer_clean", "val_eer_noisy", "val_eer", "lr", "seconds"])
            while int(self.epoch) < c.epochs:
                lr = c.lr * 0.5 * (1 + np.cos(np.pi * int(self.epoch) / c.epochs))  # cosine decay
                self.opt.learning_rate.assign(lr)
                losses, accs = [], []
                bar = tqdm(range(c.steps), desc=f"epoch {int(self.epoch) + 1}/{c.epochs}", leave=False, disable=None)
                for _ in bar:
                    x, y = sampler.batch(c.batch)
                    loss, acc = self._step(tf.constant(x), tf.constant(y))
                    losses.append(float(loss))
                    accs.append(float(acc))
                    bar.set_postfix(loss=f"{np.mean(losses[-20:]):.3f}", acc=f"{np.mean(accs[-20:]):.2f}")
                eers = {k: self._val_eer(v) for k, v in val_sets.items()}
                val = float(np.mean(list(eers.values())))
                self.epoch.assign_add(1)
                improved = val < float(self.best)
                if improved:
                    self.best.assign(val)
                    self.bad_epochs.assign(0)
                    self.embedder.save_weights(str(self.run / "best.weights.h5"))
                else:
                    self.bad_epochs.assign_add(1)
                self.manager.save()
                row = [int(self.epoch), np.mean(losses), np.mean(accs), eers["clean"], eers["noisy"], val, lr,
                       round(time.time() - start, 1)]
                log.writerow([f"{v:.5g}" if isinstance(v, float) else v for v in row])
                logf.flush()
                print(f"epoch {int(self.epoch)}: loss {np.mean(losses):.3f} acc {np.mean(accs):.3f} "
                      f"val EER clean {eers['clean']:.2f}% noisy {eers['noisy']:.2f}%{' *' if improved else ''}")
                if int(self.bad_epochs) >= c.patience:
                    print(f"early stop: no validation improvement in {c.patience} epochs")
                    break
                if time.time() - start > c.max_minutes * 60:
                    print(f"stopping: time budget of {c.max_minutes} min reached")
                    break
        return self._finish(time.time() - start)

    def _validation_sets(self) -> dict[str, tuple[list[np.ndarray], np.ndarray]]:
        rng = np.random.default_rng(self.cfg.seed + 7)
        audios, spk = [], []
        for i, paths in enumerate(self.val.values()):
            for p in paths:
                audios.append(load_audio(p))
                spk.append(i)
        noisy = [noisy_trial_version(a, rng) for a in audios]
        return {"clean": (audios, np.array(spk)), "noisy": (noisy, np.array(spk))}

    def _val_eer(self, val: tuple[list[np.ndarray], np.ndarray]) -> float:
        audios, spk = val
        emb = self._keras_embedder()
        vecs = np.stack([emb.embed(a) for a in audios])
        scores = vecs @ vecs.T
        iu = np.triu_indices(len(spk), 1)
        return eer((spk[:, None] == spk[None, :])[iu].astype(int), scores[iu])[0]

    def _keras_embedder(self) -> KerasEmbedder:
        return KerasEmbedder(self.embedder, self.features, self.cfg.window, self.cfg.hop, self.mcfg.embedding_dim)

    def _finish(self, seconds: float) -> dict:
        self.embedder.load_weights(str(self.run / "best.weights.h5"))
        metrics = {"best_val_eer": float(self.best), "epochs": int(self.epoch), "train_seconds": round(seconds, 1)}
        metrics.update(self._closed_set())
        (self.run / "metrics.json").write_text(json.dumps(metrics, indent=2))
        print(json.dumps(metrics, indent=2))
        return metrics

    def _closed_set(self) -> dict:
        """The original design's metrics: accuracy and macro-F1 of the classifier on held-out
        utterances of the training speakers (clean speed only)."""
        if not self.heldout:
            return {}
        preds, truth = [], []
        for path, label in self.heldout:
            feats = mfcc(load_audio(path), self.features)[None]
            emb = self.embedder(feats, training=False)
            logits = self.head(emb).numpy()[0]
            originals = [i for i, (_, spd) in enumerate(self.classes) if spd == 1.0]
            preds.append(originals[int(np.argmax(logits[originals]))])
            truth.append(label)
        return {"closed_set_accuracy": round(float(accuracy_score(truth, preds)), 4),
                "closed_set_macro_f1": round(float(f1_score(truth, preds, average="macro")), 4),
                "closed_set_n": len(truth)}
