"""The training loop: seeded, checkpointed, resumable, early-stopped on validation EER.

A run folder holds config.json, classes.json, log.csv, ckpt/ (resume), best.weights.h5 (the
embedder with the best validation EER) and metrics.json.

The same loop runs alone or as one worker of a cluster (train.cluster, TF_CONFIG): each worker
augments its share of the utterances and feeds its share of every global batch through a tf.data
pipeline; the chief validates, decides and writes the run folder. The batches come from an
augmentation bank built in memory before the first step (`pipeline="bank"`, train.data) or are
streamed from disk with fresh augmentation (`pipeline="stream"`, train.input_pipeline).
"""

from __future__ import annotations

import contextlib
import csv
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from sklearn.metrics import accuracy_score, f1_score
from tqdm import tqdm

from device.features import FeatureConfig, mfcc
from train import cluster
from train.augment import noisy_trial_version
from train.corpus_audio import load_audio
from train.data import CropSampler, Item, SpecMask, build_bank
from train.datasets import speaker_utterances, training_classes
from train.extract import KerasEmbedder
from train.input_pipeline import ItemStream
from train.keras_env import keras, tf
from train.metrics import eer
from train.model import ModelConfig, SpeakerHead, build_embedder

PIPELINES = ("bank", "stream")
LOG_COLUMNS = ["epoch", "loss", "train_acc", "val_eer_clean", "val_eer_noisy", "val_eer", "lr", "seconds",
               "examples_per_s"]


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
    # vocal-tract length move together). Drawn voices (es-...) are new people already.
    speeds: tuple[float, ...] = (1.0, 0.9, 1.1)
    drawn_speeds: tuple[float, ...] = (1.0,)
    val_data: str = ""  # validation speakers from this set's `val_split` (the dev set's calibration half)
    val_split: str = "val"
    channel_p: float = 0.0  # share of augmented copies that also go through a room, codec or cheap microphone
    # SpecAugment-style masking of every training crop (train.data.SpecMask): time spans of up to
    # `mask_time` frames and bands of up to `mask_freq` cepstral coefficients; never in the exported model
    spec_augment: bool = False
    mask_time: int = 20
    mask_freq: int = 4
    # Embedding distillation (off without `teacher`): an InfoNCE term on a training-only projection of the
    # embedding; the positive is the teacher's vector of the crop's own item (path, speed), the negatives
    # the batch's other items. `teacher` is an npz from train.teacher (paths relative to `data`).
    teacher: str = ""
    distill_weight: float = 1.0
    distill_temp: float = 0.1
    heldout: int = 2  # utterances per training speaker kept for closed-set accuracy / F1
    patience: int = 6
    max_minutes: float = 0.0  # a budget for the training steps (the clock starts at the first step); 0 = none
    window: int = 200
    hop: int = 100
    workers: int = 2
    # "bank": every item decoded and augmented into memory before the first step (copies fixed per
    # item); "stream": read from disk as needed, augmented afresh at every read (train.input_pipeline)
    pipeline: str = "bank"
    features: dict = field(default_factory=lambda: FeatureConfig().to_dict())
    model: dict = field(default_factory=lambda: ModelConfig().to_dict())


def prepare(cfg: TrainConfig) -> tuple[list[Item], list[tuple[str, float]], list[tuple[Path, int]], dict[str, list[Path]]]:
    """Training items (speed-perturbed pseudo-speakers), classes, held-out items, val utterances."""
    train_utts = speaker_utterances(cfg.data, cfg.splits, "train")
    classes: list[tuple[str, float]] = []
    items: list[Item] = []
    heldout: list[tuple[Path, int]] = []
    for spk, spd, keep, held in training_classes(train_utts, cfg.speeds, cfg.drawn_speeds, cfg.heldout):
        classes.append((spk, spd))
        items += [Item(p, len(classes) - 1, spd) for p in keep]
        if spd == 1.0:
            heldout += [(p, len(classes) - 1) for p in held]
    if cfg.val_data:
        return items, classes, heldout, speaker_utterances(cfg.val_data, Path(cfg.val_data) / "splits", cfg.val_split)
    return items, classes, heldout, speaker_utterances(cfg.data, cfg.splits, cfg.val_split)


class Trainer:
    def __init__(self, cfg: TrainConfig, resume: bool = False) -> None:
        self.cluster = cluster.from_environment()  # before any other TensorFlow op
        self.cfg, self.run = cfg, Path(cfg.out)
        if cfg.batch % self.cluster.workers:
            raise SystemExit(f"--batch {cfg.batch} is the global batch: it must split evenly over "
                             f"{self.cluster.workers} workers")
        if self.cluster.chief:
            self.run.mkdir(parents=True, exist_ok=True)
        self.features = FeatureConfig.from_dict(cfg.features)
        self.mcfg = ModelConfig.from_dict(cfg.model)
        # A plain copy the chief validates and saves (`_take_snapshot`). Built before seeding: its
        # initial weights are never used, and drawing them must not move the seeded run.
        self.snapshot = build_embedder(self.mcfg)
        tf.keras.utils.set_random_seed(cfg.seed)
        keras.utils.set_random_seed(cfg.seed)
        self.items, self.classes, self.heldout, self.val = prepare(cfg)
        if not self.items or len(self.val) < 2:
            raise SystemExit(f"{cfg.splits}: need training speakers and at least 2 validation speakers "
                             f"with audio under {cfg.data}")
        with self.cluster.strategy.scope():
            self.embedder = build_embedder(self.mcfg)
            self.head = SpeakerHead(len(self.classes), self.mcfg.head, self.mcfg.margin, self.mcfg.scale, name="head")
            self.head.build((None, self.mcfg.embedding_dim))
            self.teacher = self._teacher_targets() if cfg.teacher else None
            if self.teacher is not None:
                self.proj = keras.layers.Dense(self.teacher.shape[1], name="distill_proj")  # never exported
                self.proj.build((None, self.mcfg.embedding_dim))
            self.opt = keras.optimizers.Adam(cfg.lr)
        self.epoch = tf.Variable(0, dtype=tf.int64)
        self.best = tf.Variable(np.inf, dtype=tf.float64)
        self.bad_epochs = tf.Variable(0, dtype=tf.int64)
        ckpt = tf.train.Checkpoint(embedder=self.embedder, head=self.head, opt=self.opt, epoch=self.epoch,
                                   best=self.best, bad_epochs=self.bad_epochs,
                                   **({"proj": self.proj} if self.teacher is not None else {}))
        latest = tf.train.latest_checkpoint(str(self.run / "ckpt"))  # every worker resumes from the chief's
        if resume and latest:
            ckpt.restore(latest)
            print(f"resumed from {latest} (epoch {int(self.epoch)})")
        self.ckpt_dir = self.cluster.writable(self.run / "ckpt")
        self.manager = tf.train.CheckpointManager(ckpt, str(self.ckpt_dir), max_to_keep=2)
        if self.cluster.chief:
            self._write_config()

    def _teacher_targets(self) -> np.ndarray:
        """One unit teacher vector per training item, in `self.items` order, from one npz or several
        comma-separated (shards of one `train.teacher` run)."""
        shards = [np.load(f) for f in self.cfg.teacher.split(",")]
        vecs = np.concatenate([d["vectors"] for d in shards]).astype(np.float32)
        vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
        pairs = [(str(p), round(float(s), 4)) for d in shards for p, s in zip(d["paths"], d["speeds"])]
        row = {k: i for i, k in enumerate(pairs)}
        keys = [(str(it.path.relative_to(self.cfg.data)), round(it.speed, 4)) for it in self.items]
        missing = [k for k in keys if k not in row]
        if missing:
            raise SystemExit(f"{self.cfg.teacher}: no teacher vector for {len(missing)} training items, e.g. "
                             f"{missing[:3]} (python -m train.teacher with the same --data, --splits and --speeds)")
        return vecs[[row[k] for k in keys]]

    def _write_config(self) -> None:
        (self.run / "config.json").write_text(json.dumps(vars(self.cfg), indent=2, default=list))
        (self.run / "classes.json").write_text(json.dumps([{"speaker": s, "speed": v} for s, v in self.classes], indent=1))

    @tf.function(reduce_retracing=True)
    def _step(self, x, y, teacher=None, same=None):
        """One step on every worker; the loss and accuracy of the global batch. With a teacher, the
        loss adds the distillation term: `teacher` holds the batch items' teacher vectors and `same`
        marks pairs of crops of one item (all positives, sharing the target mass)."""
        def replica_step(x, y, teacher, same):
            with tf.GradientTape() as tape:
                emb = self.embedder(x, training=True)
                logits = self.head(emb, labels=y)
                per_example = tf.nn.sparse_softmax_cross_entropy_with_logits(y, logits)
                if teacher is not None:
                    z = tf.math.l2_normalize(self.proj(emb), axis=-1)
                    sim = tf.matmul(z, teacher, transpose_b=True) / self.cfg.distill_temp
                    target = same / tf.reduce_sum(same, axis=1, keepdims=True)
                    per_example += self.cfg.distill_weight * tf.nn.softmax_cross_entropy_with_logits(target, sim)
                loss = tf.nn.compute_average_loss(per_example, global_batch_size=self.cfg.batch)
            variables = self.embedder.trainable_variables + self.head.trainable_variables
            if teacher is not None:
                variables += self.proj.trainable_variables
            self.opt.apply_gradients(zip(tape.gradient(loss, variables), variables))
            hits = tf.cast(tf.equal(tf.argmax(logits, -1, output_type=tf.int32), y), tf.float32)
            return loss, tf.reduce_sum(hits) / self.cfg.batch

        strategy = self.cluster.strategy
        loss, acc = strategy.run(replica_step, args=(x, y, teacher, same))
        return (strategy.reduce(tf.distribute.ReduceOp.SUM, loss, axis=None),
                strategy.reduce(tf.distribute.ReduceOp.SUM, acc, axis=None))

    def _bank_batches(self):
        """Batches cut from an augmentation bank of this worker's items, built here."""
        c, cl = self.cfg, self.cluster
        shard = slice(cl.index, None, cl.workers)
        bank = build_bank(self.items, self.features, c.copies, c.seed, c.workers, self._babble_pool(), c.channel_p,
                          progress=lambda it, total: tqdm(it, total=total, desc="augmenting", leave=False,
                                                          disable=None if cl.chief else True),
                          shard=(cl.index, cl.workers))
        labels = np.array([it.label for it in self.items[shard]], dtype=np.int32)
        return self._batches(bank, labels, None if self.teacher is None else self.teacher[shard])

    def _babble_pool(self) -> list[Path]:
        return [it.path for it in self.items if it.speed == 1.0]

    def _spec_mask(self) -> SpecMask | None:
        return SpecMask(self.cfg.mask_time, self.cfg.mask_freq) if self.cfg.spec_augment else None

    def _stream_batches(self):
        """Batches streamed from disk (train.input_pipeline): this worker reads only its shard of the
        items, and a resumed run continues from its epoch with nothing to build."""
        c, cl = self.cfg, self.cluster
        stream = ItemStream(self.items, self.features, c.seed, c.copies, int(self.epoch), self._babble_pool(),
                            c.channel_p, self._spec_mask())
        teacher = None if self.teacher is None else tf.constant(self.teacher)

        def with_targets(x, y, idx):
            if teacher is None:
                return x, y
            same = tf.cast(tf.equal(idx[:, None], idx[None, :]), tf.float32)
            return x, y, tf.gather(teacher, idx), same

        def dataset(ctx: tf.distribute.InputContext) -> tf.data.Dataset:
            size = ctx.get_per_replica_batch_size(c.batch)
            return stream.dataset(size, shard=(cl.index, cl.workers)).map(with_targets)

        return iter(cl.strategy.distribute_datasets_from_function(dataset))

    def _batches(self, bank: list[list[np.ndarray]], labels: np.ndarray, teacher: np.ndarray | None):
        """This worker's batches (its share of the global batch) as a tf.data pipeline: crops and
        labels, and with a teacher the items' teacher vectors and which crops share an item."""
        cl = self.cluster
        sampler = CropSampler(bank, labels, self.features, self.cfg.seed + int(self.epoch),
                              worker=cl.index if cl.distributed else None, mask=self._spec_mask())
        spec = (tf.TensorSpec((None, None, self.features.n_ceps), tf.float32), tf.TensorSpec((None,), tf.int32))

        def with_teacher(size: int) -> tuple[np.ndarray, ...]:
            x, y, idx = sampler.batch(size, with_index=True)
            return x, y, teacher[idx], (idx[:, None] == idx[None, :]).astype(np.float32)

        if teacher is not None:
            spec += (tf.TensorSpec((None, teacher.shape[1]), tf.float32), tf.TensorSpec((None, None), tf.float32))
        draw = sampler.batch if teacher is None else with_teacher

        def dataset(ctx: tf.distribute.InputContext) -> tf.data.Dataset:
            size = ctx.get_per_replica_batch_size(self.cfg.batch)
            return tf.data.Dataset.from_generator(lambda: iter(lambda: draw(size), None),
                                                  output_signature=spec).prefetch(1)

        return iter(cl.strategy.distribute_datasets_from_function(dataset))

    def fit(self) -> dict:
        c, cl = self.cfg, self.cluster
        start = self.started = time.time()
        self.first_step_seconds = 0.0
        voices = len({s for s, _ in self.classes})
        say = print if cl.chief else (lambda *a, **k: None)
        say(f"{len(self.classes)} classes ({voices} voices; warps {c.speeds}, drawn voices {c.drawn_speeds}), "
            f"{len(self.items)} utterances, {len(self.val)} validation speakers"
            + (f"; {cl.workers} workers, {c.batch // cl.workers} crops each per step" if cl.distributed else ""))
        batches = self._stream_batches() if c.pipeline == "stream" else self._bank_batches()
        self.bank_seconds = time.time() - start
        val_sets = self._validation_sets() if cl.chief else {}
        first_step, epochs_before = time.time(), int(self.epoch)
        log_path = self.run / "log.csv"
        if cl.chief:
            self._trim_log(log_path)
        with open(log_path, "a", newline="") if cl.chief else contextlib.nullcontext() as logf:
            log = csv.writer(logf) if cl.chief else None
            if log and log_path.stat().st_size == 0:
                log.writerow(LOG_COLUMNS)
            while int(self.epoch) < c.epochs:
                lr = c.lr * 0.5 * (1 + np.cos(np.pi * int(self.epoch) / c.epochs))  # cosine decay
                self.opt.learning_rate.assign(lr)
                loss, acc, rate = self._train_epoch(batches)
                self._take_snapshot()
                eers = {k: self._val_eer(v) for k, v in val_sets.items()} or {"clean": 0.0, "noisy": 0.0}
                val, eers["clean"], eers["noisy"], elapsed, training = cl.from_chief(
                    float(np.mean(list(eers.values()))), eers["clean"], eers["noisy"], time.time() - start,
                    time.time() - first_step)
                self.epoch.assign_add(1)
                improved = val < float(self.best)
                if improved:
                    self.best.assign(val)
                    self.bad_epochs.assign(0)
                    if cl.chief:
                        self.snapshot.save_weights(str(self.run / "best.weights.h5"))
                else:
                    self.bad_epochs.assign_add(1)
                if log:
                    row = [int(self.epoch), loss, acc, eers["clean"], eers["noisy"], val, lr, round(elapsed, 1),
                           round(rate, 1)]
                    log.writerow([f"{v:.5g}" if isinstance(v, float) else v for v in row])
                    logf.flush()
                with cl.strategy.scope():
                    self.manager.save()
                say(f"epoch {int(self.epoch)}: loss {loss:.3f} acc {acc:.3f} "
                    f"val EER clean {eers['clean']:.2f}% noisy {eers['noisy']:.2f}%{' *' if improved else ''}; "
                    f"{rate:.0f} crops/s, ETA {self._eta(first_step, epochs_before)}", flush=True)
                if int(self.bad_epochs) >= c.patience:
                    say(f"early stop: no validation improvement in {c.patience} epochs")
                    break
                if c.max_minutes and training > c.max_minutes * 60:
                    say(f"stopping: time budget of {c.max_minutes} min of training reached")
                    break
        del batches  # stop the input threads now: a live tf.data map that calls Python can hang the exit
        cl.discard(self.ckpt_dir)
        return self._finish(time.time() - start) if cl.chief else {}

    def _train_epoch(self, batches) -> tuple[float, float, float]:
        """One epoch's steps: mean loss, mean accuracy, and examples (of the global batch) per second."""
        c = self.cfg
        losses, accs = [], []
        bar = tqdm(range(c.steps), desc=f"epoch {int(self.epoch) + 1}/{c.epochs}", leave=False,
                   disable=None if self.cluster.chief else True)
        began = time.time()
        for _ in bar:
            loss, acc = self._step(*next(batches))
            if not self.first_step_seconds:
                self._first_step_done()
            losses.append(float(loss))
            accs.append(float(acc))
            bar.set_postfix(loss=f"{np.mean(losses[-20:]):.3f}", acc=f"{np.mean(accs[-20:]):.2f}",
                            crops_per_s=f"{len(losses) * c.batch / (time.time() - began):.0f}")
        return float(np.mean(losses)), float(np.mean(accs)), c.steps * c.batch / (time.time() - began)

    def _first_step_done(self) -> None:
        """Note when the first step of this process ended: what a run waits for its input (the bank's build or
        the stream's first batches) and its first trace."""
        self.first_step_seconds = time.time() - self.started
        if self.cluster.chief:
            print(f"first training step done {self.first_step_seconds:.1f} s after the start of training "
                  f"(input ready after {self.bank_seconds:.1f} s)", flush=True)

    def _eta(self, first_step: float, epochs_before: int) -> str:
        """The time the remaining epochs take at this run's pace so far (early stopping may end it sooner)."""
        done = int(self.epoch) - epochs_before  # at least the epoch just ended
        seconds = (time.time() - first_step) / done * (self.cfg.epochs - int(self.epoch))
        return time.strftime("%H:%M:%S", time.gmtime(seconds)) if seconds < 86400 else f"{seconds / 86400:.1f} d"

    def _trim_log(self, path: Path) -> None:
        """Keep the log rows the checkpoint covers: a run killed between writing an epoch's row and
        its checkpoint repeats that epoch when resumed."""
        if not path.exists():
            return
        with open(path, newline="") as f:
            rows = list(csv.reader(f))
        kept = [r for r in rows[1:] if r and int(r[0]) <= int(self.epoch)]
        if len(kept) < len(rows) - 1:
            with open(path, "w", newline="") as f:
                csv.writer(f).writerows(rows[:1] + kept)

    def _take_snapshot(self) -> None:
        """Copy the trained weights into the plain embedder. Every worker reads them: reading
        BatchNorm statistics averages them over the workers, a collective all must join."""
        with self.cluster.strategy.scope():
            weights = self.embedder.get_weights()
        self.snapshot.set_weights(weights)

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
        return KerasEmbedder(self.snapshot, self.features, self.cfg.window, self.cfg.hop, self.mcfg.embedding_dim)

    def _finish(self, seconds: float) -> dict:
        self.snapshot.load_weights(str(self.run / "best.weights.h5"))
        metrics = {"best_val_eer": float(self.best), "epochs": int(self.epoch), "train_seconds": round(seconds, 1),
                   "bank_seconds": round(self.bank_seconds, 1),
                   "first_step_seconds": round(self.first_step_seconds, 1), "workers": self.cluster.workers}
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
            emb = self.snapshot(feats, training=False)
            logits = self.head(emb).numpy()[0]
            originals = [i for i, (_, spd) in enumerate(self.classes) if spd == 1.0]
            preds.append(originals[int(np.argmax(logits[originals]))])
            truth.append(label)
        return {"closed_set_accuracy": round(float(accuracy_score(truth, preds)), 4),
                "closed_set_macro_f1": round(float(f1_score(truth, preds, average="macro")), 4),
                "closed_set_n": len(truth)}
