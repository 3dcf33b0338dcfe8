"""Calibrated decisions: what a score means off the training domain, and the threshold in force.

The bundle's `score_calibration` (fitted on the development set's calibration half: people,
engines and channels the model never trained on, all conditions mixed) holds

  * `llr`: score -> log-likelihood ratio, `slope * score + offset` (logistic regression), so a
    score can be read as evidence;
  * a table of thresholds with the false-accept rate (one comparison of a stranger with one
    enrolled person) and the false-reject rate measured at each.

A decision may rest on several utterances of one session (device/session.py): their unit embeddings
are averaged, which moves both score distributions. The block `by_utterances` holds one more
Calibration per evidence level ("2", "3": utterances fused), fitted the same way on sessions of
that many recordings; a decision on more utterances than the largest level uses that level's
table (conservative: more evidence only narrows a stranger's scores). `same_speaker` is the cosine
at which two utterances are taken to come from one person, which keeps a session to one speaker.

Policies name what a household cares about: the chance that *a stranger's attempt is accepted as
anyone*. With N people enrolled a stranger is compared with all N and gets in when any score
passes, so the per-comparison rate must be 1 - (1 - P) ** (1 / N) for a household rate P; the
threshold in force therefore rises with the number enrolled.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


class CalibrationError(ValueError):
    """A `score_calibration` block this device cannot use."""


@dataclass(frozen=True)
class Calibration:
    scoring: str  # 'cosine' | 'asnorm': the score the table was measured on
    slope: float
    offset: float
    thresholds: np.ndarray  # ascending
    far: np.ndarray  # per-comparison false-accept rate at each threshold (non-increasing)
    frr: np.ndarray  # false-reject rate at each threshold (non-decreasing)
    eer_threshold: float

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Calibration:
        try:
            table = d["table"]
            cal = cls(str(d["scoring"]), float(d["llr"]["slope"]), float(d["llr"]["offset"]),
                      np.asarray(table["threshold"], dtype=np.float64), np.asarray(table["far"], dtype=np.float64),
                      np.asarray(table["frr"], dtype=np.float64), float(d["eer_threshold"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise CalibrationError(f"score_calibration: missing or malformed field ({exc})") from None
        n = cal.thresholds.size
        if n < 2 or cal.far.size != n or cal.frr.size != n:
            raise CalibrationError("score_calibration: table columns must have the same length (at least 2)")
        if np.any(np.diff(cal.thresholds) <= 0) or np.any(np.diff(cal.far) > 0) or np.any(np.diff(cal.frr) < 0):
            raise CalibrationError("score_calibration: table must be sorted (thresholds up, far down, frr up)")
        if cal.scoring not in ("cosine", "asnorm"):
            raise CalibrationError(f"score_calibration: unknown scoring {cal.scoring!r}")
        return cal

    def to_dict(self) -> dict[str, Any]:
        return {"scoring": self.scoring, "llr": {"slope": self.slope, "offset": self.offset},
                "eer_threshold": self.eer_threshold,
                "table": {"threshold": [round(float(x), 6) for x in self.thresholds],
                          "far": [float(f"{x:.4g}") for x in self.far], "frr": [float(f"{x:.4g}") for x in self.frr]}}

    def llr(self, score: float) -> float:
        return self.slope * float(score) + self.offset

    def threshold_for_far(self, far: float) -> float:
        """The lowest tabled threshold (interpolated in log rate) whose false-accept rate is <= `far`."""
        if not 0 < far < 1:
            raise CalibrationError(f"false-accept target must be in (0, 1), got {far}")
        log_far = np.log(np.maximum(self.far, 1e-12))
        target = np.log(far)
        if target >= log_far[0]:
            return float(self.thresholds[0])
        if target <= log_far[-1]:
            return float(self.thresholds[-1])
        # log_far decreases along the table; interpolate on the reversed (increasing) arrays
        return float(np.interp(target, log_far[::-1], self.thresholds[::-1]))

    def threshold_for_household(self, household_far: float, enrolled: int) -> float:
        """Threshold at which a stranger's attempt is accepted as any of `enrolled` people with
        probability `household_far`."""
        n = max(int(enrolled), 1)
        return self.threshold_for_far(1.0 - (1.0 - household_far) ** (1.0 / n))

    def rates(self, threshold: float, enrolled: int = 1) -> dict[str, float]:
        """Expected rates at `threshold` from the calibration measurements: a stranger accepted as
        anyone of `enrolled` people, one comparison's false accept, and a genuine user rejected."""
        far = float(np.exp(np.interp(threshold, self.thresholds, np.log(np.maximum(self.far, 1e-12)))))
        frr = float(np.interp(threshold, self.thresholds, self.frr))
        return {"stranger_accepted": 1.0 - (1.0 - far) ** max(int(enrolled), 1), "false_accept": far,
                "false_reject": frr}


def _levels(blocks: dict[str, Any], first: Calibration | None, where: str) -> dict[int, Calibration]:
    """{utterances: Calibration} from a `by_utterances` block (plus `first` as level 1)."""
    levels = {} if first is None else {1: first}
    for key, block in (blocks or {}).items():
        try:
            n = int(key)
        except ValueError:
            raise CalibrationError(f"{where}: {key!r} is not a number of utterances") from None
        level = Calibration.from_dict(block)
        lowest = 1 if first is None else 2
        if n < lowest or (first is not None and level.scoring != first.scoring):
            raise CalibrationError(f"{where}.{key}: must be {lowest} or more utterances"
                                   + (f" with {first.scoring} scoring" if first is not None else ""))
        levels[n] = level
    if 1 not in levels:
        raise CalibrationError(f"{where}: needs level 1 (a single utterance)")
    return dict(sorted(levels.items()))


def _at(levels: dict[int, Calibration], utterances: int) -> Calibration:
    """The calibration for a decision on `utterances` utterances (the largest level at most that)."""
    return levels[max(k for k in levels if k <= max(int(utterances), 1))]


@dataclass(frozen=True)
class RoomCalibration:
    """Cosine scores centred on the room (device/room.py): the estimate's parameters and its levels."""

    blend: float
    prior_utterances: float
    levels: dict[int, Calibration]

    def at(self, utterances: int = 1) -> Calibration:
        return _at(self.levels, utterances)


@dataclass(frozen=True)
class EvidenceCalibration:
    """The calibrations of one bundle by evidence: `levels[n]` for decisions on n utterances, and
    the same for room-centred scores where the bundle has them."""

    levels: dict[int, Calibration]
    same_speaker: float | None = None  # cosine between two utterances of one person; None: no session check
    room: RoomCalibration | None = None

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> EvidenceCalibration:
        levels = _levels(d.get("by_utterances") or {}, Calibration.from_dict(d), "score_calibration.by_utterances")
        same = d.get("same_speaker")
        try:
            same_speaker = None if same is None else float(same["threshold"])
        except (KeyError, TypeError, ValueError):
            raise CalibrationError("score_calibration.same_speaker: needs a numeric 'threshold'") from None
        return cls(levels, same_speaker, _room(d.get("room"), levels[1].scoring))

    def at(self, utterances: int = 1, room: bool = False) -> Calibration:
        """The calibration for a decision on `utterances` utterances (room-centred scores with `room`)."""
        if room and self.room is None:
            raise CalibrationError("this bundle has no calibration for room-centred scores")
        return self.room.at(utterances) if room else _at(self.levels, utterances)


def _room(block: Any, scoring: str) -> RoomCalibration | None:
    if block is None:
        return None
    try:
        blend, prior = float(block["blend"]), float(block["prior_utterances"])
        levels = _levels(block["by_utterances"], None, "score_calibration.room.by_utterances")
    except (KeyError, TypeError, ValueError) as exc:
        raise CalibrationError(f"score_calibration.room: missing or malformed field ({exc})") from None
    if scoring != "cosine" or any(c.scoring != "cosine" for c in levels.values()) or not 0 <= blend <= 1 or prior < 0:
        raise CalibrationError("score_calibration.room: cosine scoring only, blend in [0, 1], prior_utterances >= 0")
    return RoomCalibration(blend, prior, levels)


def household_target(policy: str) -> float | None:
    """'far1' -> 0.01, 'far0.5' -> 0.005; None for a policy that is not a false-accept target."""
    if not policy.startswith("far"):
        return None
    try:
        value = float(policy[3:]) / 100.0
    except ValueError:
        return None
    return value if 0 < value < 1 else None
