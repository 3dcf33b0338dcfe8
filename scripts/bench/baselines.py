"""The two classical baselines the benchmark compares the project against (run in .venv-train).

Both use the project's MFCC frontend (`device.features.mfcc` with the bundle's FeatureConfig) and
learn only from the training split's speakers, so the validation/test speakers in the trial lists
are as unseen as they are for the neural model.

- MFCC mean+std: an utterance is the mean and standard deviation of its MFCCs over time,
  z-normalised with statistics of the training utterances, compared by cosine.
- GMM-UBM (Reynolds et al., 2000): a diagonal GaussianMixture on training frames (MFCC + deltas),
  means MAP-adapted to the enrollment utterance (relevance factor 16), score = average per-frame
  log-likelihood ratio of the test utterance under the adapted model vs the UBM.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from pathlib import Path

import librosa
import numpy as np
from sklearn.mixture import GaussianMixture

from device.audio import load_audio
from device.features import FeatureConfig, mfcc
from device.scoring import unit


def utterance_mfcc(path: Path, cfg: FeatureConfig) -> np.ndarray:
    return mfcc(load_audio(path), cfg)


class MfccStats:
    """Mean+std MFCC vectors, z-normalised with training-speaker statistics."""

    def __init__(self, cfg: FeatureConfig) -> None:
        self.cfg = cfg
        self.mean: np.ndarray | None = None
        self.std: np.ndarray | None = None

    @staticmethod
    def _stats(feats: np.ndarray) -> np.ndarray:
        return np.concatenate([feats.mean(axis=0), feats.std(axis=0)])

    def fit(self, train_paths: Iterable[Path]) -> MfccStats:
        stats = np.stack([self._stats(utterance_mfcc(p, self.cfg)) for p in train_paths])
        self.mean, self.std = stats.mean(axis=0), stats.std(axis=0) + 1e-6
        return self

    def embed(self, path: Path) -> np.ndarray:
        v = (self._stats(utterance_mfcc(path, self.cfg)) - self.mean) / self.std
        return unit(v)


class GmmUbm:
    """Diagonal GMM-UBM with mean-only MAP adaptation per enrollment utterance."""

    def __init__(self, cfg: FeatureConfig, components: int = 64, max_frames: int = 60000,
                 relevance: float = 16.0, seed: int = 0) -> None:
        self.cfg, self.components, self.max_frames = cfg, components, max_frames
        self.relevance, self.seed = relevance, seed
        self.ubm: GaussianMixture | None = None

    def features(self, path: Path) -> np.ndarray:
        """MFCC + first-order deltas (deltas carry much of a GMM's speaker information)."""
        feats = utterance_mfcc(path, self.cfg)
        width = min(9, feats.shape[0] - (1 - feats.shape[0] % 2))
        deltas = librosa.feature.delta(feats.T, width=width).T if width >= 3 else np.zeros_like(feats)
        return np.hstack([feats, deltas]).astype(np.float64)

    def fit(self, train_paths: list[Path]) -> GmmUbm:
        rng = np.random.default_rng(self.seed)
        per_file = max(20, self.max_frames // max(1, len(train_paths)))
        frames = []
        for p in train_paths:
            f = self.features(p)
            frames.append(f[rng.choice(len(f), size=min(per_file, len(f)), replace=False)])
        self.ubm = GaussianMixture(self.components, covariance_type="diag", max_iter=50, reg_covar=1e-3,
                                   random_state=self.seed).fit(np.vstack(frames))
        return self

    def adapt(self, feats: np.ndarray) -> GaussianMixture:
        """The UBM with means MAP-adapted to `feats` (weights and variances shared)."""
        post = self.ubm.predict_proba(feats)  # (frames, components)
        n = post.sum(axis=0)
        ex = post.T @ feats / np.maximum(n, 1e-10)[:, None]
        alpha = (n / (n + self.relevance))[:, None]
        model = copy.copy(self.ubm)
        model.means_ = alpha * ex + (1 - alpha) * self.ubm.means_
        return model

    def score_pairs(self, pairs: list[tuple[Path, Path]]) -> np.ndarray:
        """Average frame log-likelihood ratio of each test file under its enrollment model."""
        feats: dict[Path, np.ndarray] = {}

        def get(p: Path) -> np.ndarray:
            if p not in feats:
                feats[p] = self.features(p)
            return feats[p]

        models: dict[Path, GaussianMixture] = {}
        ubm_ll: dict[Path, float] = {}
        scores = []
        for enroll, test in pairs:
            if enroll not in models:
                models[enroll] = self.adapt(get(enroll))
            if test not in ubm_ll:
                ubm_ll[test] = float(self.ubm.score(get(test)))
            scores.append(float(models[enroll].score(get(test))) - ubm_ll[test])
        return np.array(scores)
