"""What one crop of the streaming input pipeline (train/input_pipeline.py) costs in CPU, stage by
stage, and what the training step it feeds costs per crop: whether a stream can feed the in-memory
bank's step rate on this machine, and which stage limits it.

    nice -n 19 python -m scripts.bench.stream_cost --items 200 --out build/bench/stream_cost.json

Why: `python -m train --pipeline stream` reads, warps, augments, turns into cepstra and crops every
element on the same cores that run the training steps. However tf.data spreads the elements over
threads, C cores can deliver at most C / (element CPU + step CPU per crop) crops per second; this
measures both terms and the stages of the first.

The elements are the shipped recipe's (scripts/train_one.sh: its items and warps, --copies 2,
--channel-p 0.2, so a read is clean one time in three), `--items` of them drawn at random, each as
`ItemStream.element` computes it on its first read, the k-th element of a stream in batches of one
(so every element draws a crop length, as the batches do, and the babble reservoir is refreshed as
often as in a real stream), after WARM_UP elements that are not timed. They are timed twice: whole, the
function the pipeline calls (`ItemStream.element`), and in stages, with the functions it calls
wrapped in timers (decode, resampling warp, the babble clips' reads, every augmentation step by kind,
cepstra, crop + normalise); a stage's `ms_per_crop` is its total over all the elements divided by
their number, so the rare stages (a sox codec round trip) weigh what they weigh in a stream. The
room pool of the channel augmentation (computed once per process) is warmed first and reported apart.

Then the training step alone (`Trainer._step`, the shipped model and head over the recipe's classes,
Adam) on pre-made random crops, `--batch` crops a step (the recipe's: TrainConfig's default), at
every crop length a batch can draw, after a tracing step each; a step's cost per crop is the mean
over the lengths, as batches draw them uniformly.

Times are CPU times (the thread's clock, plus child processes' for the sox codecs; the process's for
the step), with numpy's BLAS and TensorFlow held to one thread: other jobs sharing the machine slow
the wall clock far more than they move these figures. They are the work, not the delivered rate:
the stream's Python also holds the GIL, which this does not measure.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import platform
import resource
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

RECIPE_SPEEDS = (0.82, 0.88, 0.94, 1.0, 1.06, 1.13, 1.2)  # scripts/train_one.sh
RECIPE_COPIES, RECIPE_CHANNEL_P = 2, 0.2
WARM_UP = 20  # elements computed before the timing starts


def cpu_seconds() -> float:
    """This thread's CPU time plus that of every finished child process (sox)."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.thread_time() + children.ru_utime + children.ru_stime


@dataclass
class StageClock:
    """CPU and wall seconds and calls per stage name (stages may nest: each is inclusive)."""

    cpu: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    wall: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    calls: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    @contextlib.contextmanager
    def __call__(self, stage: str) -> Iterator[None]:
        cpu, wall = cpu_seconds(), time.perf_counter()
        try:
            yield
        finally:
            self.cpu[stage] += cpu_seconds() - cpu
            self.wall[stage] += time.perf_counter() - wall
            self.calls[stage] += 1

    def wrap(self, fn: Callable[..., Any], stage: str | Callable[..., str]) -> Callable[..., Any]:
        """`fn` timed as `stage` (or as `stage(*args, **kwargs)`, to name a stage by its arguments)."""
        @functools.wraps(fn)
        def timed(*args: Any, **kwargs: Any) -> Any:
            with self(stage(*args, **kwargs) if callable(stage) else stage):
                return fn(*args, **kwargs)
        return timed

    def table(self, crops: int) -> dict[str, dict[str, float]]:
        return {s: {"ms_per_crop": round(1e3 * self.cpu[s] / crops, 3),
                    "wall_ms_per_crop": round(1e3 * self.wall[s] / crops, 3),
                    "calls": self.calls[s], "ms_per_call": round(1e3 * self.cpu[s] / self.calls[s], 3)}
                for s in self.cpu}


def recipe_stream(data: Path, splits: Path, seed: int):
    """The recipe's ItemStream (items, warps, copies, channel share, babble pool as train.train builds it)."""
    from device.features import FeatureConfig
    from train.input_pipeline import ItemStream
    from train.train import TrainConfig, prepare

    cfg = TrainConfig(data=str(data), splits=str(splits), out="", speeds=RECIPE_SPEEDS, copies=RECIPE_COPIES,
                      channel_p=RECIPE_CHANNEL_P, seed=seed)
    items, classes, _, _ = prepare(cfg)
    stream = ItemStream(items, FeatureConfig.from_dict(cfg.features), seed, cfg.copies, 0,
                        [it.path for it in items if it.speed == 1.0], cfg.channel_p)
    return stream, len(classes)


def instrument(stream, clock: StageClock) -> Callable[[], None]:
    """Wrap the functions `ItemStream.element` calls in `clock`'s timers; returns the undo."""
    from train import augment, channels, data, input_pipeline

    patches = [
        (data, "load_audio", "decode"),
        (data, "speed", "warp"),
        (input_pipeline, "log_mel_cepstra_span", "cepstra"),  # the crop's frames
        (input_pipeline, "crop_start", "crop + normalise"),
        (input_pipeline, "normalised_window", "crop + normalise"),
        (augment, "reverb", "augment: reverb (synthetic)"),
        (channels, "room", "augment: reverb (room pool)"),
        (augment, "add_noise", lambda *a, **k: f"augment: noise ({a[3] if len(a) > 3 else k.get('kind', 'white')})"),
        (augment, "band_limit", "augment: band limit"),
        (channels, "channel", lambda audio, kind, rng: f"augment: channel ({'mic' if kind == 'mic' else 'codec'})"),
        (augment, "gain", "augment: gain + peak guard"),
        (augment, "clip_safe", "augment: gain + peak guard"),
    ]
    originals = [(module, name, getattr(module, name)) for module, name, _ in patches]
    for module, name, stage in patches:
        setattr(module, name, clock.wrap(getattr(module, name), stage))
    augmenter = input_pipeline.Augmenter

    class TimedAugmenter(augmenter):
        def __call__(self, audio: np.ndarray) -> np.ndarray:
            with clock("augment (all)"):
                return super().__call__(audio)

    input_pipeline.Augmenter = TimedAugmenter
    stream._babble_clips = clock.wrap(stream._babble_clips, "babble clips (read, cached)")

    def undo() -> None:
        for module, name, fn in originals:
            setattr(module, name, fn)
        input_pipeline.Augmenter = augmenter
        del stream._babble_clips

    return undo


def element_costs(data: Path, splits: Path, n_items: int, seed: int) -> dict[str, Any]:
    """The elements' CPU: whole (as the pipeline calls them), then in stages (a fresh stream each time)."""
    from train import channels
    from train.corpus_audio import load_audio

    began = cpu_seconds()
    channels.room_pool()
    room_pool_s = cpu_seconds() - began
    stream, classes = recipe_stream(data, splits, seed)
    picks = np.random.default_rng((seed, 1)).choice(len(stream.items), size=min(n_items, len(stream.items)),
                                                    replace=False)
    for k, index in enumerate(picks[:WARM_UP]):  # lazy imports, sox's first start, caches: not an element's cost
        stream.element(k, int(index), 1, 1)
    stream, _ = recipe_stream(data, splits, seed)
    whole = StageClock()
    for k, index in enumerate(picks):  # batches of 1 for the crop lengths: every element draws one
        with whole("element (whole, as the pipeline calls it)"):
            stream.element(k, int(index), 0, 1)
    stream, _ = recipe_stream(data, splits, seed)
    staged = StageClock()
    undo = instrument(stream, staged)
    try:
        for k, index in enumerate(picks):
            with staged("element (staged)"):
                stream.element(k, int(index), 0, 1)
    finally:
        undo()
    audio_s = np.mean([len(load_audio(stream.items[int(i)].path)) / 16000 for i in picks])
    crop_frames = np.mean([stream.crop_length(k) for k in range(len(picks))])
    stages = {**whole.table(len(picks)), **staged.table(len(picks))}
    return {"items": len(picks), "classes": classes, "mean_source_clip_s": round(float(audio_s), 2),
            "mean_crop_frames": round(float(crop_frames)),
            "room_pool_once_s": round(room_pool_s, 2), "stages": {s: stages[s] for s in sorted(stages, key=_order)}}


STAGE_ORDER = ("element (whole", "element (staged", "decode", "warp", "babble", "augment (all", "augment:", "cepstra", "crop")


def _order(stage: str) -> tuple[int, str]:
    return next(i for i, prefix in enumerate(STAGE_ORDER) if stage.startswith(prefix)), stage


def pipeline_costs(data: Path, splits: Path, batches: int, batch: int, seed: int) -> dict[str, Any]:
    """The real tf.data pipeline (`ItemStream.dataset`) without training: crops per second delivered,
    CPU per crop (every thread of the process) and the cores it kept busy, after a first batch."""
    stream, _ = recipe_stream(data, splits, seed)
    it = iter(stream.dataset(batch))
    next(it)
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(batches):
        next(it)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    crops = batches * batch
    return {"batches": batches, "crops_per_s": round(crops / wall, 1), "ms_per_crop": round(1e3 * cpu / crops, 3),
            "cores_busy": round(cpu / wall, 2)}


def step_costs(classes: int, batch: int, repeats: int, seed: int) -> dict[str, Any]:
    """The training step alone on pre-made crops: CPU ms per crop at every crop length, and their mean."""
    from train.keras_env import tf

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    from train import cluster
    from train.data import crop_lengths
    from train.keras_env import keras
    from train.model import ModelConfig, SpeakerHead, build_embedder
    from train.train import TrainConfig, Trainer

    cfg = TrainConfig(data="", splits="", out="", batch=batch, seed=seed)
    mcfg = ModelConfig.from_dict(cfg.model)
    trainer = Trainer.__new__(Trainer)  # the real step (`Trainer._step`) without a corpus, run folder or validation
    trainer.cfg, trainer.cluster, trainer.mcfg = cfg, cluster.from_environment(), mcfg
    with trainer.cluster.strategy.scope():
        trainer.embedder = build_embedder(mcfg)
        trainer.head = SpeakerHead(classes, mcfg.head, mcfg.margin, mcfg.scale, name="head")
        trainer.head.build((None, mcfg.embedding_dim))
        trainer.opt = keras.optimizers.Adam(cfg.lr)
    rng = np.random.default_rng(seed)
    per_length = {}
    for n in crop_lengths():
        x = tf.constant(rng.standard_normal((batch, n, mcfg.n_ceps)).astype(np.float32))
        y = tf.constant(rng.integers(0, classes, batch).astype(np.int32))
        trainer._step(x, y)  # trace
        cpu, wall = time.process_time(), time.perf_counter()
        for _ in range(repeats):
            float(trainer._step(x, y)[0])
        per_length[n] = {"ms_per_crop": round(1e3 * (time.process_time() - cpu) / repeats / batch, 3),
                         "wall_ms_per_crop": round(1e3 * (time.perf_counter() - wall) / repeats / batch, 3)}
    mean = float(np.mean([v["ms_per_crop"] for v in per_length.values()]))
    return {"batch": batch, "repeats": repeats, "per_length": per_length, "ms_per_crop": round(mean, 3)}


def main(argv: list[str] | None = None) -> int:
    from train.train import TrainConfig

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default="data/corpus")
    p.add_argument("--splits", default="data/corpus/splits-mb300", help="the recipe's (scripts/train_one.sh writes it)")
    p.add_argument("--items", type=int, default=200, help="training items timed")
    p.add_argument("--batch", type=int, default=TrainConfig.batch, help="crops per step (the recipe's: the default)")
    p.add_argument("--step-repeats", type=int, default=10, help="timed steps per crop length")
    p.add_argument("--cores", type=int, default=os.cpu_count(), help="cores the ceiling is worked out for")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--skip-step", action="store_true", help="time the elements only")
    p.add_argument("--pipeline-batches", type=int, default=0, help="also run the real tf.data pipeline for this many "
                   "batches (no training): its delivered rate and CPU per crop (on a shared machine the rate is the "
                   "share of the cores it got)")
    p.add_argument("--out", default="build/bench/stream_cost.json")
    a = p.parse_args(argv)
    threadpool_limits(1)  # one core per stage: numpy's BLAS (TensorFlow's threads are set in step_costs)
    elements = element_costs(Path(a.data), Path(a.splits), a.items, a.seed)
    element_ms = elements["stages"]["element (whole, as the pipeline calls it)"]["ms_per_crop"]
    result: dict[str, Any] = {"cpu": platform.processor() or platform.machine(), "cores": a.cores, **elements}
    ceiling = {"input_only_crops_per_s": round(a.cores * 1e3 / element_ms)}
    if not a.skip_step:
        result["step"] = step_costs(elements["classes"], a.batch, a.step_repeats, a.seed)
        step_ms = result["step"]["ms_per_crop"]
        ceiling["step_only_crops_per_s"] = round(a.cores * 1e3 / step_ms)
        ceiling["stream_crops_per_s"] = round(a.cores * 1e3 / (element_ms + step_ms))
    result["ceiling"] = ceiling
    if a.pipeline_batches:
        result["pipeline"] = pipeline_costs(Path(a.data), Path(a.splits), a.pipeline_batches, a.batch, a.seed)
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(result, indent=2))
    width = max(map(len, result["stages"]))
    print(f"{'stage':<{width}}  ms/crop  calls  ms/call")
    for stage, row in result["stages"].items():
        print(f"{stage:<{width}}  {row['ms_per_crop']:7.2f}  {row['calls']:5d}  {row['ms_per_call']:7.2f}")
    if "step" in result:
        print(f"{'training step (batch ' + str(a.batch) + ')':<{width}}  {result['step']['ms_per_crop']:7.2f}")
    print(f"ceiling on {a.cores} cores (crops/s): {ceiling}")
    if "pipeline" in result:
        print(f"tf.data pipeline alone: {result['pipeline']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
