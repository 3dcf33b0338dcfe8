"""Training data: speaker-labelled utterances -> a seeded bank of augmented feature copies ->
random variable-length crops per batch.

Augmentation (noise, reverb, band-limit, gain) is drawn per copy with a seeded generator; speed
perturbation (0.9 / 1.1) makes new pseudo-speakers as in Kaldi recipes. Crops of 1-4 s are cut
from the un-normalised cepstra and normalised afterwards, exactly as the device normalises
whatever audio it is given. Optionally (`SpecMask`) each crop then has time spans and cepstral bands
masked; that happens here, in the training batches only, so no exported model contains it.
"""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from device.embedder import fit_window
from device.features import FeatureConfig, log_mel_cepstra, normalize
from train.augment import Augmenter, speed
from train.corpus_audio import load_audio

CROP_FRAMES = (100, 150, 200, 250, 300, 400)  # 1-4 s; a few fixed lengths keep TF from retracing
BABBLE_CLIPS = 3  # other speakers' clips mixed into one utterance's babble
_MASK_STREAM = 1  # the masks' own random stream: masking changes no crop, only what is masked in it


@dataclass
class Item:
    path: Path
    label: int
    speed: float


def warped_audio(path: Path, spd: float) -> np.ndarray:
    """An item's audio at its resampling warp (the pseudo-speaker it stands for)."""
    audio = load_audio(path)
    return speed(audio, spd) if spd != 1.0 else audio


def babble_picks(pool_size: int, rng: np.random.Generator) -> np.ndarray:
    """Which of a pool's clips make one utterance's babble noise (other speakers talking)."""
    return rng.choice(pool_size, size=min(BABBLE_CLIPS, pool_size), replace=False)


def crop_window(feats: np.ndarray, n: int, cfg: FeatureConfig, rng: np.random.Generator) -> np.ndarray:
    """A random `n`-frame crop of un-normalised cepstra, normalised as the device normalises what it
    hears; shorter cepstra are repeated to fill it."""
    s = crop_start(feats.shape[0], n, rng)
    return normalised_window(feats[s:s + n], n, cfg)


def crop_start(frames: int, n: int, rng: np.random.Generator) -> int:
    """Where `crop_window` starts an `n`-frame crop of `frames` frames (0 when they are no longer)."""
    return int(rng.integers(0, frames - n + 1)) if frames > n else 0


def normalised_window(feats: np.ndarray, n: int, cfg: FeatureConfig) -> np.ndarray:
    """At most `n` frames of un-normalised cepstra as `crop_window` returns them: normalised, then
    repeated to fill `n` frames."""
    return fit_window(normalize(feats.astype(np.float32), cfg), n)


def _bank_job(args) -> list[np.ndarray]:
    path, spd, copies, seed, cfg_dict, babble_paths, channel_p = args
    cfg = FeatureConfig.from_dict(cfg_dict)
    rng = np.random.default_rng(seed)
    audio = warped_audio(path, spd)
    babble = [load_audio(p) for p in babble_paths]
    augment = Augmenter(rng, babble, p_channel=channel_p)
    out = [log_mel_cepstra(audio, cfg).astype(np.float16)]
    out += [log_mel_cepstra(augment(audio), cfg).astype(np.float16) for _ in range(copies)]
    return out


def build_bank(items: list[Item], cfg: FeatureConfig, copies: int, seed: int, workers: int = 2,
               babble_pool: list[Path] | None = None, channel_p: float = 0.0, progress=None,
               shard: tuple[int, int] = (0, 1)) -> list[list[np.ndarray]]:
    """For each item of this worker's shard (index, count: items[index::count]): [clean cepstra,
    `copies` augmented cepstra] (float16, un-normalised). An item's copies depend on the seed and its
    place in `items`, not on how many workers share the work."""
    pool = babble_pool or []
    rng = np.random.default_rng(seed)
    jobs = []
    for i, it in enumerate(items):
        picks = [pool[j] for j in babble_picks(len(pool), rng)] if pool else []
        jobs.append((it.path, it.speed, copies, seed * 100003 + i, cfg.to_dict(), picks, channel_p))
    jobs = jobs[shard[0]::shard[1]]
    with ProcessPoolExecutor(max_workers=workers) as ex:
        results = ex.map(_bank_job, jobs, chunksize=8)
        return list(progress(results, total=len(jobs)) if progress else results)


def crop_lengths(max_frames: int = 400) -> list[int]:
    """The crop lengths a batch draws from."""
    return [n for n in CROP_FRAMES if n <= max_frames]


@dataclass(frozen=True)
class SpecMask:
    """SpecAugment-style masking (Park et al. 2019) of one normalised crop: `count` time spans of
    up to `time` frames and `count` bands of up to `freq` cepstral coefficients are set to the
    crop's mean of each coefficient (zero after CMN), so they carry no speaker information."""

    time: int = 20
    freq: int = 4
    count: int = 2

    def __call__(self, crop: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        frames, ceps = crop.shape
        fill = crop.mean(axis=0)
        out = crop.copy()
        for _ in range(self.count):
            width = int(rng.integers(0, min(self.time, frames) + 1))
            start = int(rng.integers(0, frames - width + 1))
            out[start:start + width] = fill
            width = int(rng.integers(0, min(self.freq, ceps) + 1))
            start = int(rng.integers(0, ceps - width + 1))
            out[:, start:start + width] = fill[start:start + width]
        return out


class CropSampler:
    """Seeded batches of random crops: every batch has one crop length from CROP_FRAMES.

    In a multi-worker run (`worker` = this worker's index) every worker draws the same sequence of
    crop lengths and its own crops: a training step traced for one length on every worker keeps the
    workers' collectives in step. With `mask`, every crop is masked from a stream of its own (the
    same crops as without it)."""

    def __init__(self, bank: list[list[np.ndarray]], labels: np.ndarray, cfg: FeatureConfig, seed: int,
                 max_frames: int = 400, worker: int | None = None, mask: SpecMask | None = None) -> None:
        self.bank, self.labels, self.cfg, self.mask = bank, np.asarray(labels), cfg, mask
        self.rng = np.random.default_rng(seed if worker is None else (seed, worker))
        self.length_rng = self.rng if worker is None else np.random.default_rng(seed)
        self.mask_rng = np.random.default_rng((seed, worker or 0, _MASK_STREAM))
        self.lengths = crop_lengths(max_frames)

    def batch(self, size: int, with_index: bool = False) -> tuple[np.ndarray, ...]:
        """(crops, labels), plus the items' indices with `with_index` (for per-item targets)."""
        n = int(self.length_rng.choice(self.lengths))
        idx = self.rng.integers(0, len(self.bank), size)
        x = np.stack([self._crop(self.bank[i][self.rng.integers(len(self.bank[i]))], n) for i in idx])
        if self.mask is not None:
            x = np.stack([self.mask(crop, self.mask_rng) for crop in x])
        return (x, self.labels[idx], idx) if with_index else (x, self.labels[idx])

    def _crop(self, feats: np.ndarray, n: int) -> np.ndarray:
        return crop_window(feats, n, self.cfg, self.rng)
