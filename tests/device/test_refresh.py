"""Profile refresh (device/refresh.py): bounded, anchored to the enrolment, never from an unsure,
locked-out, held or other-model decision, undone exactly; its store migration and its CLI."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from device.audio import load_audio
from device.bundle import Bundle
from device.config import DEFAULT_MODEL, Config, RefreshConfig
from device.embedder import Embedder
from device.enroll import Enroller
from device.recognizer import Recognizer
from device.refresh import ProfileRefresher, RefreshError, history, profile_of, refresh_threshold, revert, set_hold
from device.scoring import unit
from device.store import MIGRATIONS, SCHEMA_VERSION, Sample, Speaker, Store
from tests.helpers import REPO, run

SHA = "a" * 64
DIM = 16
CLIPS = REPO / "device" / "demo_clips"
MODEL = REPO / DEFAULT_MODEL
ON = RefreshConfig(enabled=True)


def near(direction: np.ndarray, seed: int, noise: float = 0.05) -> np.ndarray:
    return unit(direction + noise * np.random.default_rng(seed).normal(size=direction.shape))


def axis(i: int) -> np.ndarray:
    return np.eye(DIM, dtype=np.float32)[i]


def enroll(store: Store, name: str, vectors: list[np.ndarray]) -> np.ndarray:
    """Save a profile made of `vectors` as its enrolment samples; returns the profile."""
    profile = profile_of(vectors)
    store.save_speaker(Speaker(name, "tiny", SHA, profile, len(vectors), 3.0 * len(vectors), 0.9),
                       [Sample(v, 3.0, 2.5, 30.0) for v in vectors])
    return profile


@pytest.fixture
def store(tmp_path: Path):
    with Store(tmp_path / "store.db") as s:
        yield s


def test_refresh_is_bounded_and_keeps_the_enrolment(store: Store) -> None:
    enrol = [near(axis(0), seed) for seed in range(4)]
    enroll(store, "ann", enrol)
    refresher = ProfileRefresher(store, RefreshConfig(enabled=True, max_recent=3), SHA)
    versions = [store.profiles_version()]
    for i in range(5):
        outcome = refresher.consider("ann", near(axis(0), 10 + i), 0.95, 0.9, unsure=False, locked=False, now=1000.0 + i)
        assert outcome.applied and outcome.reason == "refreshed", outcome
        versions.append(store.profiles_version())
    assert len(set(versions)) == len(versions)  # every refresh tells a running Recognizer to reload
    h = store.profile_history("ann")
    assert [r.state for r in h.refreshes] == ["evicted", "evicted", "active", "active", "active"]
    assert [r.time for r in h.active] == [1002.0, 1003.0, 1004.0]
    assert len(store.samples("ann")) == 4 and h.speaker.n_samples == 4
    want = profile_of([*enrol, *(near(axis(0), 10 + i) for i in (2, 3, 4))])
    np.testing.assert_allclose(store.profiles(SHA)["ann"], want, atol=1e-6)
    assert not np.allclose(store.profiles(SHA)["ann"], profile_of(enrol), atol=1e-4)  # it did move


def test_drift_is_refused_and_leaves_the_profile(store: Store) -> None:
    before = enroll(store, "ann", [axis(0), axis(0)])
    refresher = ProfileRefresher(store, ON, SHA)
    # another direction: one such vector beside two enrolment samples gives cosine 2/sqrt(5) = 0.894 < 0.9
    outcome = refresher.consider("ann", axis(1), 0.99, 0.9, unsure=False, locked=False)
    assert not outcome.applied and "drift" in outcome.reason
    assert outcome.similarity == pytest.approx(2 / np.sqrt(5), abs=1e-5)
    assert np.array_equal(store.profiles(SHA)["ann"], before)
    [refused] = store.profile_history("ann").refreshes
    assert refused.state == "refused" and "cosine 0.894" in refused.reason and refused.id == outcome.refresh_id


def test_slow_drift_stops_at_the_anchor(store: Store) -> None:
    """Each step is close to the profile it joins, yet the run of them is stopped once the profile
    would leave the enrolment by more than min_similarity."""
    enroll(store, "ann", [axis(0)] * 4)
    refresher = ProfileRefresher(store, ON, SHA)
    outcomes = [refresher.consider("ann", unit(np.cos(a) * axis(0) + np.sin(a) * axis(1)), 0.99, 0.9, unsure=False,
                                   locked=False) for a in np.linspace(0.4, 1.5, 6)]
    applied = [o.applied for o in outcomes]
    assert applied[0] and not applied[-1] and applied == sorted(applied, reverse=True)
    assert all(o.similarity >= 0.9 for o in outcomes if o.applied)
    assert float(np.dot(store.profiles(SHA)["ann"], axis(0))) >= 0.9


@pytest.mark.parametrize("case", ["unsure", "locked", "held", "below", "off", "other model", "not enrolled"])
def test_never_refreshed(store: Store, case: str) -> None:
    before = enroll(store, "ann", [axis(0), near(axis(0), 1)])
    if case == "held":
        set_hold(store, "ann", True)
    refresher = ProfileRefresher(store, RefreshConfig(enabled=case != "off"), "b" * 64 if case == "other model" else SHA)
    outcome = refresher.consider("bob" if case == "not enrolled" else "ann", near(axis(0), 2), 0.8 if case == "below" else 0.95,
                                 0.9, unsure=case == "unsure", locked=case == "locked")
    expected = {"unsure": "unsure", "locked": "locked out", "held": "on hold", "below": "below the refresh threshold 0.900",
                "off": "enabled = false", "other model": "another model", "not enrolled": "bob is not enrolled"}[case]
    assert not outcome.applied and expected in outcome.reason
    assert np.array_equal(store.profiles(SHA)["ann"], before) and store.profile_history("ann").refreshes == []


def test_revert_restores_the_enrolment_profile_exactly(store: Store) -> None:
    enrol = [near(axis(0), seed) for seed in range(3)]
    enroll(store, "ann", enrol)
    enrolled = store.profiles(SHA)["ann"]
    refresher = ProfileRefresher(store, ON, SHA)
    ids = [refresher.consider("ann", near(axis(0), 20 + i, 0.2), 0.95, 0.9, unsure=False, locked=False).refresh_id
           for i in range(3)]
    with pytest.raises(RefreshError, match=r"ann: refresh 999 is not an active refresh of ann \(active: "):
        revert(store, "ann", to=999)
    with pytest.raises(RefreshError, match="bob: not enrolled"):
        revert(store, "bob")
    assert revert(store, "ann", to=ids[0]) == ids[1:]
    first = store.profile_history("ann").active[0]
    np.testing.assert_allclose(store.profiles(SHA)["ann"], profile_of([*enrol, first.embedding]), atol=1e-6)
    assert revert(store, "ann") == ids[:1]
    assert np.array_equal(store.profiles(SHA)["ann"], enrolled)
    assert [(r.state, r.reason) for r in store.profile_history("ann").refreshes] == [("reverted", "reverted by the admin")] * 3
    assert revert(store, "ann") == []  # nothing left to undo is not an error


def test_reenrolment_retires_active_refreshes(store: Store) -> None:
    enroll(store, "ann", [axis(0), axis(0)])
    ProfileRefresher(store, ON, SHA).consider("ann", near(axis(0), 3), 0.95, 0.9, unsure=False, locked=False)
    set_hold(store, "ann", True)
    enroll(store, "ann", [axis(0)] * 3)
    h = store.profile_history("ann")
    assert [(r.state, r.reason) for r in h.refreshes] == [("reverted", "re-enrolled")] and h.hold
    np.testing.assert_allclose(h.speaker.embedding, axis(0), atol=1e-6)


def test_schema_1_store_upgrades_in_place(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    db = sqlite3.connect(path)
    db.executescript(MIGRATIONS[0])
    db.execute("PRAGMA user_version = 1")
    vec = np.asarray(axis(2), "<f4").tobytes()
    db.execute("INSERT INTO speakers VALUES (1, 'ann', 'tiny', ?, ?, 1, 3.0, 0.9, 5.0, 6.0)", (SHA, vec))
    db.execute("INSERT INTO samples VALUES (1, 1, ?, 3.0, 2.5, 30.0, '[\"ok\"]', NULL, 5.0)", (vec,))
    db.commit()
    db.close()
    with Store(path) as store:
        assert store.schema_version == SCHEMA_VERSION >= 2
        assert np.array_equal(store.profiles(SHA)["ann"], axis(2)) and store.profiles_version() == (1, 6.0)
        h = store.profile_history("ann")
        assert len(h.enrolment) == 1 and h.refreshes == [] and not h.hold
        assert ProfileRefresher(store, ON, SHA).consider("ann", near(axis(2), 4), 0.95, 0.9, unsure=False,
                                                         locked=False).applied
    with Store(path) as again:  # opening an upgraded store migrates nothing twice
        assert again.schema_version == SCHEMA_VERSION and len(again.profile_history("ann").active) == 1


def real_embeddings(names: list[str]) -> dict[str, np.ndarray]:
    embedder = Embedder(MODEL)
    return {n: embedder.embed(load_audio(CLIPS / f"{n}.flac")) for n in names}


def enroll_alan(store: Store) -> None:
    enroller = Enroller.for_store(store, Embedder(MODEL), Config(model=str(MODEL)), "alan")
    for i in range(1, 6):
        enroller.add(load_audio(CLIPS / f"alan-enroll-{i}.flac"), f"alan-enroll-{i}")
    enroller.save(store)


def test_real_voices_another_person_drifts_out(store: Store) -> None:
    """The shipped model on held-out voices: the refresh threshold (far0.1) admits alan's own clip
    only if it scores that high, and the drift guard alone (threshold forced open) stops a run of
    mikhail's clips from walking alan's profile away: measured cosines 0.986, 0.958, 0.922, then 0.891."""
    enroll_alan(store)
    bundle = Bundle.load(MODEL)
    sha = str(bundle.meta["sha256"])
    emb = real_embeddings(["alan-test-1", "mikhail-test-1", "mikhail-test-2"])
    refresher = ProfileRefresher(store, ON, sha)
    threshold = refresh_threshold(bundle, ON.policy, 1, bundle.threshold("far1", 1))
    assert threshold == bundle.threshold("far0.1", 1) > bundle.threshold("far1", 1)
    score = float(np.dot(store.profiles(sha)["alan"], emb["alan-test-1"]))
    own = refresher.consider("alan", emb["alan-test-1"], score, threshold, unsure=False, locked=False)
    assert own.applied == (score >= threshold)
    revert(store, "alan")
    enrolled = store.profiles(sha)["alan"]
    mikhail = [emb["mikhail-test-1"], emb["mikhail-test-2"]] * 2
    outcomes = [refresher.consider("alan", v, 1.0, -1.0, unsure=False, locked=False) for v in mikhail]
    assert [o.applied for o in outcomes] == [True, True, True, False]
    assert outcomes[-1].similarity < 0.9 < outcomes[-2].similarity
    assert float(np.dot(store.profiles(sha)["alan"], enrolled)) >= 0.9
    revert(store, "alan")
    np.testing.assert_allclose(store.profiles(sha)["alan"], enrolled, atol=1e-6)


def test_the_recognizer_refreshes_from_what_the_device_hears_only(tmp_path: Path) -> None:
    """Wired into Recognizer: an accept above the refresh policy refreshes; an uploaded file
    (learn=False, the page's try-it) and a config with refresh off never do."""
    cfg = Config(model=str(MODEL), store=str(tmp_path / "s.db"), refresh=RefreshConfig(enabled=True, policy="eer"))
    audio = load_audio(CLIPS / "alan-test-1.flac")
    with Store(cfg.store_path) as store:
        enroll_alan(store)
        recognizer = Recognizer(cfg, store, "eer")
        heard = recognizer.recognize(audio)
        assert heard.decision.accepted and heard.decision.speaker == "alan"
        assert heard.refresh is not None and heard.refresh.applied, heard.refresh
        uploaded = recognizer.recognize(audio, learn=False)
        assert uploaded.decision.accepted and uploaded.refresh is None
        assert Recognizer(Config(model=str(MODEL), store=cfg.store), store, "eer").recognize(audio).refresh is None
        assert len(history(store, "alan").active) == 1


def cli(*args: object) -> subprocess.CompletedProcess:
    return run([sys.executable, "-m", "device", *args], timeout=120)


def test_cli_history_revert_hold(tmp_path: Path) -> None:
    db = tmp_path / "s" / "store.db"
    common = ["--model", MODEL, "--store", db]
    proc = cli("enroll", "alan", "--files", *sorted(CLIPS.glob("alan-enroll-*.flac")), *common, "--json")
    assert proc.returncode == 0, proc.stderr[-1500:]
    sha = str(Bundle.load(MODEL).meta["sha256"])
    emb = real_embeddings(["alan-test-1", "alan-test-2"])
    with Store(db) as store:
        enrolled = store.profiles(sha)["alan"]
        refresher = ProfileRefresher(store, ON, sha)
        ids = [refresher.consider("alan", emb[n], 0.95, 0.9, unsure=False, locked=False, event_id=7).refresh_id
               for n in ("alan-test-1", "alan-test-2")]

    proc = cli("profiles", "history", "alan", *common, "--json")
    assert proc.returncode == 0, proc.stderr
    h = json.loads(proc.stdout)
    assert (h["name"], h["enrolment_samples"], h["active"], h["hold"]) == ("alan", 5, 2, False)
    assert [(r["id"], r["state"], r["score"], r["event_id"]) for r in h["refreshes"]] == [(i, "active", 0.95, 7) for i in ids]
    proc = cli("profiles", "history", "alan", *common)
    assert proc.stdout.startswith("alan: 5 enrolment samples, 2 active refreshes, refresh hold off")

    proc = cli("profiles", "revert", "alan", "--to", ids[0], *common, "--json")
    assert proc.returncode == 0 and json.loads(proc.stdout) == {"name": "alan", "reverted": ids[1:], "active": 1}
    proc = cli("profiles", "revert", "alan", "--to", ids[1], *common)
    assert proc.returncode == 2 and f"error: alan: refresh {ids[1]} is not an active refresh of alan" in proc.stderr
    proc = cli("profiles", "revert", "alan", "--all", *common)
    assert proc.returncode == 0 and "alan: reverted 1 refreshes" in proc.stdout
    proc = cli("profiles", "history", "alan", *common)
    assert [line.split()[7] for line in proc.stdout.splitlines()[1:]] == ["reverted", "reverted"]

    assert cli("profiles", "hold", "alan", *common).stdout.strip() == "alan: refreshes on hold"
    with Store(db) as store:
        np.testing.assert_allclose(store.profiles(sha)["alan"], enrolled, atol=1e-6)
        held = ProfileRefresher(store, ON, sha).consider("alan", emb["alan-test-1"], 0.95, 0.9, unsure=False, locked=False)
        assert not held.applied and "on hold" in held.reason
    assert cli("profiles", "hold", "alan", "--off", *common).stdout.strip() == "alan: refreshes allowed"
    for action in ("history", "revert", "hold"):
        proc = cli("profiles", action, "nobody", *common)
        assert proc.returncode == 2 and f"error: nobody: not enrolled in {db}" in proc.stderr
