"""Training batches streamed from disk (`python -m train --pipeline stream`), the alternative to the
augmentation bank (`train.data.build_bank`) for corpora too large to hold in memory.

Every element is read from disk when it is needed: decoded, warped, augmented afresh, turned into
the device's cepstra (`device.features.log_mel_cepstra`; only the frames the crop takes), cropped and
normalised as `CropSampler` crops the bank, in a `tf.data` pipeline:

    item indices (this worker's shard, pass after pass) -> bounded shuffle of the indices
    -> read + augment + cepstra + crop, in parallel (tf.numpy_function, AUTOTUNE threads)
    -> batches of one crop length -> prefetch

Memory is bounded by the buffers, not by the corpus: the shuffle holds indices only, the map holds
the elements in flight, and babble noise comes from a small cache of decoded clips.

Determinism: an element's augmentation and crop are seeded by (seed, epoch the stream started at,
how many times its item was read before, item index), its babble clips by the same and its place in
the stream, and a batch's crop length by (seed, epoch, batch number) alone, so that every worker of
a cluster draws the same lengths. Two runs with the same seed and number of workers give the same
batches, whatever the number of threads.

Augmentation is the bank's (`train.augment.Augmenter`: noise, babble, reverb, channel) but drawn
anew at every read. Of the bank's `copies + 1` stored versions of an item one is clean; here a read
is clean with the same chance, 1 / (copies + 1).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from device.features import FeatureConfig, log_mel_cepstra_span
from train.augment import Augmenter
from train.corpus_audio import load_audio
from train.data import Item, SpecMask, babble_picks, crop_lengths, crop_start, normalised_window, warped_audio
from train.keras_env import tf

SHUFFLE_BUFFER = 8192  # item indices mixed before reading (indices only: a few bytes each)
BABBLE_RESERVOIR = 8  # the clips an element's babble is picked from...
BABBLE_REFRESH = 512  # ...redrawn from the whole pool every this many elements
BABBLE_CACHE = 24  # decoded babble clips kept in memory (least recently used dropped)
PREFETCH_BATCHES = 2
_AUGMENT, _CROP, _LENGTH, _BABBLE, _ORDER = range(5)  # independent random streams


class ClipCache:
    """Decoded audio by path, at most `capacity` clips (least recently used dropped); shared by the
    pipeline's threads. A clip's content depends only on its path, so what the cache holds never
    changes a result."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._clips: OrderedDict[Path, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def __call__(self, path: Path) -> np.ndarray:
        with self._lock:
            if path in self._clips:
                self._clips.move_to_end(path)
                return self._clips[path]
        clip = load_audio(path)
        with self._lock:
            self._clips[path] = clip
            while len(self._clips) > self.capacity:
                self._clips.popitem(last=False)
        return clip


@dataclass
class ItemStream:
    """The training items as a seeded stream of augmented crops (see the module's docstring)."""

    items: list[Item]
    features: FeatureConfig
    seed: int
    copies: int = 4  # a read is clean with chance 1 / (copies + 1), as a bank of `copies` is
    epoch: int = 0  # the epoch the stream starts at (a resumed run's), part of every seed
    babble_pool: list[Path] = field(default_factory=list)
    channel_p: float = 0.0
    mask: SpecMask | None = None
    max_frames: int = 400

    def __post_init__(self) -> None:
        self.babble = ClipCache(BABBLE_CACHE)
        self.lengths = crop_lengths(self.max_frames)
        self.labels = np.array([it.label for it in self.items], dtype=np.int32)

    def audio(self, index: int, read: int, element: int = 0) -> np.ndarray:
        """Item `index`'s audio at its `read`-th read: warped, then clean or freshly augmented."""
        item = self.items[index]
        rng = np.random.default_rng((self.seed, self.epoch, read, index, _AUGMENT))
        audio = warped_audio(item.path, item.speed)
        if rng.integers(self.copies + 1) == 0:
            return audio
        return Augmenter(rng, self._babble_clips(element, rng), p_channel=self.channel_p)(audio)

    def crop_length(self, batch: int) -> int:
        """Batch `batch`'s crop length: the same on every worker."""
        rng = np.random.default_rng((self.seed, self.epoch, batch, _LENGTH))
        return self.lengths[int(rng.integers(len(self.lengths)))]

    def element(self, element: int, index: int, read: int, size: int) -> tuple[np.ndarray, np.int32, int]:
        """The `element`-th crop of this stream (batches of `size`): crop, label, item index. The crop
        is `crop_window`'s of the device's cepstra of `audio(index, read, element)`, bit for bit, but
        only the frames it takes (and the rest of their blocks) are computed."""
        audio = self.audio(index, read, element)
        n, frames = self.crop_length(element // size), self.features.n_frames(len(audio))
        rng = np.random.default_rng((self.seed, self.epoch, read, index, _CROP))
        start = crop_start(frames, n, rng)
        feats = log_mel_cepstra_span(audio, self.features, start, min(frames, start + n))
        crop = normalised_window(feats, n, self.features)
        if self.mask is not None:
            crop = self.mask(crop, rng)
        return crop, self.labels[index], index

    def _babble_clips(self, element: int, rng: np.random.Generator) -> list[np.ndarray]:
        """A few clips of other utterances, picked from a reservoir redrawn every BABBLE_REFRESH
        elements: the stream reads a few clips per refresh, not a few per element."""
        if not self.babble_pool:
            return []
        draw = np.random.default_rng((self.seed, self.epoch, element // BABBLE_REFRESH, _BABBLE))
        size = min(BABBLE_RESERVOIR, len(self.babble_pool))
        reservoir = draw.choice(len(self.babble_pool), size=size, replace=False)
        return [self.babble(self.babble_pool[reservoir[j]]) for j in babble_picks(size, rng)]

    def order(self, shard: tuple[int, int] = (0, 1)) -> tf.data.Dataset:
        """(element number, item index, read count) of this worker's shard (items[i::n]): pass after
        pass over its items, shuffled in a bounded buffer of indices."""
        mine = np.arange(shard[0], len(self.items), shard[1], dtype=np.int64)
        passes = tf.data.Dataset.range(np.iinfo(np.int64).max)
        pairs = passes.flat_map(lambda read: tf.data.Dataset.from_tensor_slices(mine).map(lambda i: (i, read)))
        shuffle_seed = int(np.random.default_rng((self.seed, self.epoch, _ORDER)).integers(2**31))
        shuffled = pairs.shuffle(min(len(mine), SHUFFLE_BUFFER), seed=shuffle_seed)
        return shuffled.enumerate().map(lambda k, pair: (k, pair[0], pair[1]))

    def dataset(self, size: int, shard: tuple[int, int] = (0, 1)) -> tf.data.Dataset:
        """Batches of `size` crops: (crops, labels, item indices)."""
        def read(k, index, count):
            crop, label, idx = tf.numpy_function(
                lambda *a: self.element(*(int(v) for v in a), size), [k, index, count],
                (tf.float32, tf.int32, tf.int64), stateful=False)
            crop.set_shape((None, self.features.n_ceps))
            label.set_shape(())
            idx.set_shape(())
            return crop, label, idx

        crops = self.order(shard).map(read, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        return crops.batch(size).prefetch(PREFETCH_BATCHES)
