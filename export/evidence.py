"""Calibration by evidence: decisions on 1, 2 or 3 utterances of one session, fitted on the
development set's calibration half as the device meets them.

Every person of the half is enrolled on their enrolment utterances (clean, the unit mean the
device stores) and tried with sessions of n of their test utterances (the unit mean of the unit
embeddings, as device.session fuses them) in each condition family a device meets: clean, noisy
room, first 1.5 s, a channel (codec or cheap microphone). Everyone else of the half is a stranger
to that session. The families weigh the same (each gives the same sessions); KLettres' single
letters are no family: nobody talks to a device in one syllable, and their near-chance scores
would drag every threshold.

The same utterance pairs give the same-speaker cosine that keeps a session to one person: the
score two utterances of one person reach in all but SAME_SPEAKER_SPLIT of pairs.
"""

from __future__ import annotations

import csv
import itertools
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from device import room
from device.scoring import asnorm_scores, unit
from train.channels import CHANNELS

FAMILIES = ("clean", "noisy", "short", "channel")
LEVELS = (1, 2, 3)
ENROLL_UTTERANCES = 4  # the dev set's enrolment role: a person's first four utterances
SESSIONS_PER_PERSON = 24  # per family and level, drawn (seeded) from every combination
SAME_SPEAKER_SPLIT = 0.10  # share of one person's utterance pairs a session may split (noisy rooms split most)
ROOM_PEOPLE = 4  # people a device has heard in a room when its room calibration is fitted


@dataclass(frozen=True)
class Roles:
    enroll: list[str]  # paths relative to the dev set, clean
    test: list[str]


def roles(dev: Path, half: str) -> dict[str, Roles]:
    """{person: enrolment and test utterances} of `half`, from the dev set's `utterances.csv`
    (role column), or for a set without it, the first ENROLL_UTTERANCES sorted files as enrolment."""
    names = (dev / "splits" / f"{half}.txt").read_text().split()
    table = dev / "utterances.csv"
    if table.is_file():
        with open(table, newline="", encoding="utf-8") as f:
            rows = [r for r in csv.DictReader(f) if r["speaker"] in names]
        return {n: Roles(sorted(r["path"] for r in rows if r["speaker"] == n and r["role"] == "enroll"),
                         sorted(r["path"] for r in rows if r["speaker"] == n and r["role"] == "test")) for n in names}
    out = {}
    for n in names:
        files = sorted(f"{n}/{p.name}" for p in (dev / n).glob("*.wav"))
        out[n] = Roles(files[:ENROLL_UTTERANCES], files[ENROLL_UTTERANCES:])
    return out


def in_family(rel: str, family: str) -> str:
    """The dev-set path of utterance `rel` in a condition family (a channel fixed per file)."""
    if family == "clean":
        return rel
    if family == "channel":
        return f"_channel/{CHANNELS[zlib.crc32(rel.encode()) % len(CHANNELS)]}/{rel}"
    return f"_{family}/{rel}"


def files_needed(people: dict[str, Roles]) -> list[str]:
    return [*(r for p in people.values() for r in p.enroll),
            *(in_family(r, f) for p in people.values() for r in p.test for f in FAMILIES)]


@dataclass
class Trials:
    """Paired rows: profile (enrolled person) against the fused evidence of a session."""

    labels: np.ndarray
    enroll: np.ndarray
    test: np.ndarray
    enroll_owner: np.ndarray
    test_owner: np.ndarray
    family: np.ndarray

    def scores(self, cohort: np.ndarray | None = None, top_k: int = 50, owners: Iterable[str] = ()) -> np.ndarray:
        """Cosine, or with a cohort AS-norm leaving both trial sides' own people out of it."""
        if cohort is None:
            return np.sum(self.enroll * self.test, axis=1)
        own = np.array(list(owners))[None, :]
        exclude = (own == self.enroll_owner[:, None]) | (own == self.test_owner[:, None])
        return asnorm_scores(self.enroll, self.test, unit(cohort.astype(np.float32)), top_k, exclude=exclude)


def profiles(people: dict[str, Roles], vecs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The device's profile of each person: unit mean of their enrolment embeddings."""
    return {n: unit(np.mean([vecs[r] for r in p.enroll], axis=0)) for n, p in people.items()}


def sessions(tests: list[str], n: int, rng: np.random.Generator, limit: int = SESSIONS_PER_PERSON) -> list[tuple[str, ...]]:
    combos = list(itertools.combinations(tests, n))
    if len(combos) <= limit:
        return combos
    return [combos[i] for i in sorted(rng.choice(len(combos), size=limit, replace=False))]


def session_trials(people: dict[str, Roles], vecs: dict[str, np.ndarray], n: int, seed: int = 0,
                   families: tuple[str, ...] = FAMILIES, centres: dict[str, np.ndarray] | None = None) -> Trials:
    """Every person's sessions of `n` test utterances per family against every profile of the half;
    with `centres` (per family) both sides are centred on the family's vector first (device/room.py)."""
    rng = np.random.default_rng([seed, 51, n])
    names = sorted(people)
    rows: list[tuple[int, str, np.ndarray, str, str]] = []
    for family in families:
        centre = None if centres is None else centres[family]
        prof = {k: room.centred(v, centre) for k, v in profiles(people, vecs).items()}
        for person in names:
            for group in sessions(people[person].test, n, rng):
                evidence = room.centred(unit(np.mean([vecs[in_family(r, family)] for r in group], axis=0)), centre)
                rows += [(int(other == person), other, evidence, person, family) for other in names]
    return Trials(np.array([r[0] for r in rows]), np.stack([prof[r[1]] for r in rows]), np.stack([r[2] for r in rows]),
                  np.array([r[1] for r in rows]), np.array([r[3] for r in rows]), np.array([r[4] for r in rows]))


def room_centres(people: dict[str, Roles], vecs: dict[str, np.ndarray], cohort_mean: np.ndarray,
                 seed: int = 0) -> dict[str, np.ndarray]:
    """Per family, the centre a device reaches after hearing ROOM_PEOPLE of the half's people there
    (every test utterance of theirs), as device.room.RoomEstimate computes it."""
    rng = np.random.default_rng([seed, 52])
    names = sorted(people)
    out = {}
    for family in FAMILIES:
        heard = [names[i] for i in rng.choice(len(names), size=min(ROOM_PEOPLE, len(names)), replace=False)]
        estimate = room.RoomEstimate(cohort_mean)
        for who in heard:
            for r in people[who].test:
                estimate.hear(vecs[in_family(r, family)])
        out[family] = estimate.centre()
    return out


def same_speaker_threshold(people: dict[str, Roles], vecs: dict[str, np.ndarray]) -> dict[str, float]:
    """The cosine two utterances of one person reach in all but SAME_SPEAKER_SPLIT of pairs (both in
    one family), and the share of two different people's pairs it tells apart."""
    genuine, other = [], []
    for family in FAMILIES:
        utts = [(n, unit(vecs[in_family(r, family)])) for n in sorted(people) for r in people[n].test]
        owners = np.array([u[0] for u in utts])
        m = np.stack([u[1] for u in utts])
        sim = m @ m.T
        iu = np.triu_indices(len(utts), 1)
        same = owners[iu[0]] == owners[iu[1]]
        genuine.append(sim[iu][same])
        other.append(sim[iu][~same])
    genuine_all, other_all = np.concatenate(genuine), np.concatenate(other)
    threshold = float(np.quantile(genuine_all, SAME_SPEAKER_SPLIT))
    return {"threshold": round(threshold, 6), "genuine_split": round(float(np.mean(genuine_all < threshold)), 4),
            "change_caught": round(float(np.mean(other_all < threshold)), 4),
            "n_genuine_pairs": int(genuine_all.size), "n_other_pairs": int(other_all.size)}
