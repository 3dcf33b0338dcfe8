"""Room adaptation: centre embeddings on what this device hears before scoring them.

A room (its reverberation, its fridge, its television) moves every embedding the device makes in
it the same way, the enrolled people's and strangers' alike; subtracting that shared part before
the cosine leaves more of what tells people apart. The estimate of it is a running mean of the
unit embeddings of every utterance the device hears, and it is blended with the bundle's cohort
mean (many voices) so that a two-person home is not centred on its own two voices: a household
mean alone removes the very voices it should recognise.

    centre = BLEND * room_mean + (1 - BLEND) * cohort_mean
    room_mean = (PRIOR_UTTERANCES * cohort_mean + heard * heard_mean) / (PRIOR_UTTERANCES + heard)

`heard_mean` is an exponential mean over about HORIZON utterances, so the estimate follows a room
that changes (a new sofa, the heating on). Profiles are stored as enrolled and centred when
scored, so they always follow the current estimate. Centred scores have their own calibration
(the bundle's `score_calibration.room`, fitted on the development set with the same estimate);
a bundle without it is never centred.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from device.scoring import unit

BLEND = 0.5  # share of the room's own mean in the centre (the rest: the cohort's)
PRIOR_UTTERANCES = 10.0  # the cohort mean counts as this many heard utterances
HORIZON = 500  # the heard mean forgets on this scale (utterances)


def centred(vector: np.ndarray, centre: np.ndarray | None) -> np.ndarray:
    """`vector` (or a stack of them) moved by -`centre`, unit length again; unchanged without a centre."""
    return vector if centre is None else unit(np.asarray(vector, dtype=np.float32) - centre)


class RoomEstimate:
    """The running estimate of what the device hears, and the centre it gives."""

    def __init__(self, cohort_mean: np.ndarray, blend: float = BLEND, prior_utterances: float = PRIOR_UTTERANCES,
                 heard: int = 0, heard_mean: np.ndarray | None = None) -> None:
        self.cohort_mean = np.asarray(cohort_mean, dtype=np.float64)
        self.blend, self.prior = float(blend), float(prior_utterances)
        self.heard = int(heard)
        self.heard_mean = np.zeros_like(self.cohort_mean) if heard_mean is None else np.asarray(heard_mean, np.float64)

    def hear(self, vector: np.ndarray) -> None:
        self.heard += 1
        weight = 1.0 / min(self.heard, HORIZON)
        self.heard_mean = (1 - weight) * self.heard_mean + weight * unit(vector).astype(np.float64)

    def centre(self) -> np.ndarray:
        n = min(self.heard, HORIZON)
        room_mean = (self.prior * self.cohort_mean + n * self.heard_mean) / (self.prior + n)
        return (self.blend * room_mean + (1 - self.blend) * self.cohort_mean).astype(np.float32)

    def to_dict(self) -> dict[str, Any]:
        return {"heard": self.heard, "heard_mean": [round(float(x), 6) for x in self.heard_mean]}

    @classmethod
    def restore(cls, cohort_mean: np.ndarray, blend: float, prior_utterances: float,
                saved: dict[str, Any] | None) -> RoomEstimate:
        """An estimate continued from `saved` (`to_dict`), or a new one when nothing usable was saved
        (another model's estimate has another length: it starts over)."""
        fresh = cls(cohort_mean, blend, prior_utterances)
        if not isinstance(saved, dict):
            return fresh
        mean = np.asarray(saved.get("heard_mean", []), dtype=np.float64)
        if mean.shape != fresh.cohort_mean.shape or not isinstance(saved.get("heard"), int):
            return fresh
        return cls(cohort_mean, blend, prior_utterances, saved["heard"], mean)
