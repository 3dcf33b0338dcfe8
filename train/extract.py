"""Embeddings from a training run folder (Keras weights), through the same window logic as the
device embedder."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from device.embedder import WindowEmbedder
from device.features import FeatureConfig
from train.model import ModelConfig, build_embedder


class KerasEmbedder(WindowEmbedder):
    def __init__(self, model, features: FeatureConfig, window_frames: int, hop_frames: int, embedding_dim: int) -> None:
        super().__init__(features, window_frames, hop_frames, embedding_dim)
        self.model = model

    @classmethod
    def from_run(cls, run_dir: str | Path, weights: str = "best.weights.h5") -> KerasEmbedder:
        run = Path(run_dir)
        cfg = json.loads((run / "config.json").read_text())
        mcfg = ModelConfig.from_dict(cfg["model"])
        model = build_embedder(mcfg, frames=cfg["window"])
        model.load_weights(str(run / weights))
        return cls(model, FeatureConfig.from_dict(cfg["features"]), cfg["window"], cfg["hop"], mcfg.embedding_dim)

    def embed_windows(self, windows: np.ndarray) -> np.ndarray:
        out = []
        for i in range(0, len(windows), 256):
            out.append(self.model(windows[i:i + 256].astype(np.float32), training=False).numpy())
        return np.concatenate(out)
