"""Room adaptation (device/room.py): the running estimate, centring, its calibration, and that a
bundle without a room calibration is never centred whatever the config says."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from device.audio import load_audio
from device.bundle import Bundle, BundleError
from device.config import Config, RoomConfig
from device.embedder import Embedder
from device.enroll import Enroller
from device.recognizer import Recognizer
from device.room import HORIZON, RoomEstimate, centred
from device.scoring import unit
from device.store import Store
from tests.helpers import REPO

MODEL = REPO / "models" / "default"
CLIPS = REPO / "device" / "demo_clips"
LEVEL = {"scoring": "cosine", "llr": {"slope": 8.0, "offset": -2.0}, "eer_threshold": 0.2,
         "table": {"threshold": [0.0, 0.2, 0.3, 0.4, 0.6], "far": [0.5, 0.1, 0.01, 0.001, 0.0001],
                   "frr": [0.0, 0.05, 0.1, 0.3, 0.7]}}
ROOM = {"blend": 0.5, "prior_utterances": 10, "by_utterances": {"1": LEVEL}}


def test_the_estimate_starts_at_the_cohort_and_moves_towards_what_it_hears() -> None:
    cohort_mean = np.array([0.5, 0.0, 0.0])
    estimate = RoomEstimate(cohort_mean, blend=0.5, prior_utterances=10)
    np.testing.assert_allclose(estimate.centre(), cohort_mean)  # nothing heard: the cohort alone
    for _ in range(10):
        estimate.hear(np.array([0.0, 2.0, 0.0]))  # unit length: (0, 1, 0)
    # room mean = (10 * cohort + 10 * (0, 1, 0)) / 20; centre = half of it + half the cohort
    np.testing.assert_allclose(estimate.centre(), [0.375, 0.25, 0.0], atol=1e-6)


def test_the_estimate_forgets_on_its_horizon_and_restores_from_the_store() -> None:
    estimate = RoomEstimate(np.zeros(2), prior_utterances=0)
    for _ in range(HORIZON):
        estimate.hear(np.array([1.0, 0.0]))
    for _ in range(HORIZON):
        estimate.hear(np.array([0.0, 1.0]))
    mean = estimate.heard_mean
    assert mean[1] > 0.6 > mean[0] > 0.3  # the newer room weighs more, the older one is not gone
    again = RoomEstimate.restore(np.zeros(2), 0.5, 0.0, json.loads(json.dumps(estimate.to_dict())))
    np.testing.assert_allclose(again.centre(), estimate.centre(), atol=1e-5)
    assert RoomEstimate.restore(np.zeros(3), 0.5, 10, estimate.to_dict()).heard == 0  # another model: start over
    assert RoomEstimate.restore(np.zeros(2), 0.5, 10, "garbage").heard == 0


def test_centring_removes_what_two_embeddings_share() -> None:
    x, y = unit(np.array([1.0, 1.0]) + [2.0, 0.0]), unit(np.array([1.0, -1.0]) + [2.0, 0.0])
    assert float(x @ y) == pytest.approx(0.8)  # (3, 1) and (3, -1): alike mostly through what they share
    assert float(centred(x, (x + y) / 2) @ centred(y, (x + y) / 2)) == pytest.approx(-1.0)
    np.testing.assert_array_equal(centred(x, None), x)


def bundle_copy(tmp_path: Path, room: dict | None) -> Path:
    out = tmp_path / "bundle"
    shutil.copytree(MODEL, out)
    meta = json.loads((out / "model.json").read_text())
    meta["score_calibration"].pop("room", None)
    if room is not None:
        meta["score_calibration"]["room"] = room
    (out / "model.json").write_text(json.dumps(meta))
    return out


def test_a_malformed_room_calibration_is_refused(tmp_path: Path) -> None:
    with pytest.raises(BundleError, match="score_calibration.room"):
        Bundle.load(bundle_copy(tmp_path, {"blend": 2.0, "prior_utterances": 10, "by_utterances": {"1": LEVEL}}))


def enrolled_store(path: Path, bundle: Path) -> None:
    with Store(path) as store:
        enroller = Enroller.for_store(store, Embedder(bundle), Config(model=str(bundle)), "alan")
        for i in range(1, 6):
            enroller.add(load_audio(CLIPS / f"alan-enroll-{i}.flac"), f"alan-enroll-{i}")
        enroller.save(store)


def decisions(bundle: Path, store_path: Path, room: bool) -> list[tuple[str, float, float]]:
    cfg = Config(model=str(bundle), store=str(store_path), room=RoomConfig(enabled=room))
    with Store(store_path) as store:
        recognizer = Recognizer(cfg, store, "far1")
        out = []
        for clip in sorted(CLIPS.glob("*-test-*.flac")):
            d = recognizer.recognize(load_audio(clip)).decision
            out.append((d.label, round(d.score, 6), round(d.threshold, 6)))
        return out


def test_a_bundle_without_room_calibration_is_never_centred(tmp_path: Path) -> None:
    bundle = bundle_copy(tmp_path, None)
    enrolled_store(tmp_path / "s.db", bundle)
    assert Bundle.load(bundle).room is None
    assert decisions(bundle, tmp_path / "s.db", room=True) == decisions(bundle, tmp_path / "s.db", room=False)
    sha = str(Bundle.load(bundle).meta["sha256"])
    with Store(tmp_path / "s.db") as store:
        assert store.get_setting(f"room:{sha[:16]}") is None  # nothing learnt either


def test_with_a_room_calibration_scores_are_centred_and_the_estimate_persists(tmp_path: Path) -> None:
    bundle = bundle_copy(tmp_path, ROOM)
    enrolled_store(tmp_path / "s.db", bundle)
    plain = decisions(bundle, tmp_path / "s.db", room=False)
    adapted = decisions(bundle, tmp_path / "s.db", room=True)
    assert [s for _, s, _ in adapted] != [s for _, s, _ in plain]
    # the room table's far1 threshold for one enrolled person is its 1 % row
    assert [t for _, _, t in adapted] == pytest.approx([0.3] * len(adapted))
    cfg = Config(model=str(bundle), store=str(tmp_path / "s.db"), room=RoomConfig(enabled=True))
    with Store(tmp_path / "s.db") as store:
        estimate = Recognizer(cfg, store, "far1").room
        assert estimate.heard == len(adapted)  # every utterance heard, kept across restarts
        # the same clip again, after all of them were heard, is scored on that centre
        clip = load_audio(next(CLIPS.glob("alan-test-*.flac")))
        recognizer = Recognizer(cfg, store, "far1")
        centre = recognizer.room.centre()
        got = recognizer.recognize(clip, learn=False).decision
        embedding = Embedder(bundle).embed_audio(clip).vector
        want = float(centred(store.profiles(recognizer.model_sha)["alan"], centre) @ centred(embedding, centre))
        assert got.score == pytest.approx(want, abs=1e-5)
