"""The MFCC matrix an event keeps for the status page's heatmap: at most `EVENT_MFCC_FRAMES`
frames (consecutive frames averaged), float16. Enough to see an utterance's shape, never enough
to resynthesise it; raw audio is never stored with events."""

from __future__ import annotations

import numpy as np

EVENT_MFCC_FRAMES = 100  # at most this many frames of the utterance MFCC are kept per event


def downsample_mfcc(feats: np.ndarray, max_frames: int = EVENT_MFCC_FRAMES) -> np.ndarray:
    """Average consecutive frames so at most `max_frames` remain; float16 for the heatmap."""
    feats = np.asarray(feats, dtype=np.float32)
    if len(feats) > max_frames:  # every group has >= 1 frame; one reduceat, not a mean per group (daemon latency)
        edges = np.linspace(0, len(feats), max_frames + 1).astype(int)
        feats = np.add.reduceat(feats.astype(np.float64), edges[:-1], axis=0) / np.diff(edges)[:, None]
    return feats.astype(np.float16)
