"""Model bundles: `models/<name>/` = the `.tflite`, `model.json` and an optional AS-norm cohort.

`model.json` carries everything the device needs and nothing it must guess. Loading verifies the
schema version, the sha256 of the model and cohort files, and the feature config; any mismatch is
a BundleError with a message that names the bundle and the problem (never a silent wrong answer).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from device.calibration import Calibration, CalibrationError, EvidenceCalibration, RoomCalibration, household_target
from device.features import FeatureConfig, FeatureConfigError
from device.policies import POLICIES  # noqa: F401  (re-exported: the names live in device/policies.py)
from device.scoring import unit

BUNDLE_SCHEMA = 2
READABLE_SCHEMAS = (1, 2)  # 1: thresholds from training-domain validation speakers, no score calibration


class BundleError(ValueError):
    """A model bundle this device cannot use."""


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass
class Bundle:
    path: Path
    meta: dict[str, Any]
    features: FeatureConfig
    window_frames: int
    hop_frames: int
    embedding_dim: int
    tflite_path: Path
    cohort: np.ndarray | None = None
    thresholds: dict[str, dict[str, float]] = field(default_factory=dict)
    evidence: EvidenceCalibration | None = None  # the score calibration per number of utterances fused

    @property
    def name(self) -> str:
        return str(self.meta.get("name", self.path.name))

    @property
    def quantization(self) -> str:
        return str(self.meta.get("quantization", "float32"))

    @property
    def calibration(self) -> Calibration | None:
        """The single-utterance score calibration (None for a bundle without one)."""
        return self.evidence.at(1) if self.evidence is not None else None

    @property
    def same_speaker_threshold(self) -> float | None:
        """Cosine at which two utterances count as one person's (sessions); None when not calibrated."""
        return self.evidence.same_speaker if self.evidence is not None else None

    @property
    def scoring(self) -> str:
        """The score the decisions use: the calibration's, else 'asnorm' when the bundle ships a
        cohort, else plain 'cosine'."""
        if self.calibration is not None:
            return self.calibration.scoring
        return "asnorm" if self.cohort is not None else "cosine"

    @property
    def asnorm_top_k(self) -> int:
        return int(self.meta.get("cohort", {}).get("top_k", 50)) if self.meta.get("cohort") else 0

    @property
    def room(self) -> RoomCalibration | None:
        """The calibration of room-centred scores (device/room.py); None: this bundle is never centred."""
        return self.evidence.room if self.evidence is not None else None

    def threshold(self, policy: str | float, enrolled: int = 1, utterances: int = 1, room: bool = False) -> float:
        """Decision threshold for a policy name (device.policies.POLICIES) or an explicit number.

        With a score calibration, a false-accept policy ('far1') is the chance that a stranger's
        attempt is accepted as any of the `enrolled` people compared, so the threshold rises with
        it; 'eer' is the calibration set's equal-error threshold. Both are read from the table of
        the evidence the decision rests on (`utterances` fused in one session; `room`: scores
        centred on the room, device/room.py)."""
        if isinstance(policy, (int, float)) and not isinstance(policy, bool):
            return float(policy)
        try:
            return float(policy)  # a number given as text, e.g. from a CLI flag
        except (TypeError, ValueError):
            pass
        if self.evidence is not None:
            calibration = self.evidence.at(utterances, room)
            target = household_target(str(policy))
            if target is not None:
                return calibration.threshold_for_household(target, enrolled)
            if policy == "eer":
                return calibration.eer_threshold
        table = self.thresholds.get(self.scoring, {})
        if policy not in table:
            raise BundleError(f"{self.path}: no '{policy}' threshold for {self.scoring} scoring "
                              f"(known: {', '.join(sorted(table)) or 'none'})")
        return float(table[policy])

    def unsure_threshold(self, accept: float, unsure_far: float, enrolled: int = 1, utterances: int = 1,
                         room: bool = False) -> float:
        """The lower edge of the "unsure" band below `accept`: the score a stranger's attempt reaches
        as anyone of `enrolled` with chance `unsure_far`. No band (= `accept`) without a calibration."""
        if self.evidence is None or unsure_far <= 0:
            return accept
        return min(accept, self.evidence.at(utterances, room).threshold_for_household(unsure_far, enrolled))

    def operating_point(self, policy: str | float, enrolled: int = 1, utterances: int = 1,
                        room: bool = False) -> dict[str, Any]:
        """The threshold in force for `policy` with `enrolled` people on `utterances` fused, and what
        the calibration measured at it (None where the bundle has no score calibration)."""
        threshold = self.threshold(policy, enrolled, utterances, room)
        rates = self.evidence.at(utterances, room).rates(threshold, enrolled) if self.evidence is not None else None
        return {"policy": str(policy), "enrolled": int(enrolled), "utterances": int(utterances), "room": room,
                "scoring": self.scoring, "threshold": round(threshold, 4),
                "expected": rates and {k: round(v, 4) for k, v in rates.items()}}

    @classmethod
    def load(cls, path: str | Path) -> Bundle:
        root = Path(path)
        meta_path = root / "model.json"
        if not meta_path.is_file():
            raise BundleError(f"{root}: not a model bundle (no model.json)")
        try:
            meta = json.loads(meta_path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise BundleError(f"{meta_path}: unreadable JSON ({exc})") from None
        if not isinstance(meta, dict):
            raise BundleError(f"{meta_path}: expected a JSON object")
        if meta.get("schema") not in READABLE_SCHEMAS:
            raise BundleError(f"{meta_path}: bundle schema {meta.get('schema')!r}; this device reads schemas "
                              f"{', '.join(map(str, READABLE_SCHEMAS))}")
        try:
            features = FeatureConfig.from_dict(meta["features"])
            window = meta["window"]
            window_frames, hop_frames = int(window["frames"]), int(window["hop"])
            embedding_dim = int(meta["embedding_dim"])
            tflite_path = root / meta["tflite"]
            expected_sha = meta["sha256"]
        except FeatureConfigError as exc:
            raise BundleError(f"{meta_path}: {exc}") from None
        except (KeyError, TypeError, ValueError) as exc:
            raise BundleError(f"{meta_path}: missing or malformed field ({exc})") from None
        if not tflite_path.is_file():
            raise BundleError(f"{root}: model file {tflite_path.name} is missing")
        actual = sha256_file(tflite_path)
        if actual != expected_sha:
            raise BundleError(f"{tflite_path}: sha256 {actual[:12]}… does not match model.json ({str(expected_sha)[:12]}…); "
                              "the file is corrupt or was replaced")
        if window_frames < 1 or not 1 <= hop_frames <= window_frames:
            raise BundleError(f"{meta_path}: bad window {window}")
        try:
            evidence = EvidenceCalibration.from_dict(meta["score_calibration"]) if meta.get("score_calibration") else None
        except CalibrationError as exc:
            raise BundleError(f"{meta_path}: {exc}") from None
        cohort = _load_cohort(root, meta)
        if evidence is not None and evidence.at(1).scoring == "asnorm" and cohort is None:
            raise BundleError(f"{meta_path}: score_calibration is for AS-norm scores but the bundle has no cohort")
        return cls(root, meta, features, window_frames, hop_frames, embedding_dim, tflite_path,
                   cohort, _thresholds(meta, meta_path), evidence)


def _load_cohort(root: Path, meta: dict[str, Any]) -> np.ndarray | None:
    info = meta.get("cohort")
    if not info:
        return None
    path = root / info["file"]
    if not path.is_file():
        raise BundleError(f"{root}: cohort file {info['file']} named in model.json is missing")
    if sha256_file(path) != info.get("sha256"):
        raise BundleError(f"{path}: sha256 does not match model.json")
    cohort = np.load(path).astype(np.float32)
    if cohort.ndim != 2 or cohort.shape[1] != int(meta["embedding_dim"]):
        raise BundleError(f"{path}: cohort shape {cohort.shape} does not match embedding_dim {meta['embedding_dim']}")
    return unit(cohort)


def _thresholds(meta: dict[str, Any], meta_path: Path) -> dict[str, dict[str, float]]:
    table = meta.get("thresholds", {})
    if not isinstance(table, dict):
        raise BundleError(f"{meta_path}: thresholds must be an object")
    return {kind: {k: float(v) for k, v in values.items()} for kind, values in table.items()}
