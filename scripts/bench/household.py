"""Household design choices measured in-process on the development set's report half (run in .venv-train):

    python -m scripts.bench.household --model models/default --dev data/dev --json build/dev/household.json

Every decision goes through the device's own `Recognizer.decide` (thresholds per evidence level,
"unsure" band, the bundle's scoring), so the numbers are the CLI's without a process per attempt;
`scripts/bench/open_set.py` checks the default policy through the real CLI.

* **sessions**: open set as scripts.bench.open_set draws it (12 enrolled, the rest strangers),
  attempts of 1, 2 and 3 test recordings per condition, at every policy: named / unsure /
  rejected / misidentified, strangers accepted / unsure; without and with room adaptation (the
  device has heard ROOM_HEARD of the enrolled people in that condition, device/room.py).
* **room**: EER of single recordings when embeddings are centred before scoring on a blend of what
  the device heard in that condition (k people's utterances: 2, 4, 8, noise on or off) and the
  bundle's cohort mean (weight ROOM_BLEND), against no centring.
* **conversations**: sessions as the daemon forms them (`Recognizer.judge`: same-speaker cosine,
  another person accepted alone, and `[session] join_far`), at far1: each enrolled person's 3 test
  recordings in a row (named after 3), and a stranger who speaks right after 1 or 2 recordings of an
  enrolled person (accepted as anyone at the stranger's utterance: a stranger riding on someone's
  evidence), for join_far values from off to strict.
* **refresh**: each enrolled person's test recordings arrive in order; an accept at the refresh
  policy adds the recording to the profile (device/refresh.py's rule, bounded, drift-guarded);
  the second half of their recordings (and every stranger's) are judged on the refreshed profiles.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np

from device.bundle import Bundle
from device.config import Config, RefreshConfig, RoomConfig
from device.embedder import Embedder
from device.recognizer import Recognizer
from device.refresh import profile_of
from device.room import RoomEstimate
from device.scoring import Decision, unit
from device.store import Store
from export.evidence import Roles, in_family, roles
from scripts.bench.open_set import draw, groups, household_arguments
from train.evaluate import embed_paths
from train.metrics import eer

CONDITIONS = ("clean", "noisy", "channel", "short")
POLICIES = ("far0.5", "far1", "far2", "far5", "eer")
ROOM_BLEND = 0.5
ROOM_PEOPLE = (2, 4, 8)
ROOM_HEARD = 4
JOIN_FARS = (0.0, 0.05, 0.1, 0.2, 0.3)


def embed_half(model: Path, dev: Path, people: dict[str, Roles]) -> dict[str, np.ndarray]:
    files = [r for p in people.values() for r in p.enroll] + [in_family(r, c) for p in people.values()
                                                              for r in p.test for c in CONDITIONS]
    found, problems, _ = embed_paths(Embedder(model), [dev / f for f in files])
    if problems:
        raise SystemExit(f"household: {len(problems)} files could not be embedded: {problems[:3]}")
    return {str(p.relative_to(dev)): v for p, v in found.items()}


def tally(rows: list[tuple[str | None, object]]) -> dict:
    genuine = [(t, d) for t, d in rows if t is not None]
    strangers = [d for t, d in rows if t is None]

    def pct(k: int, n: int) -> float:
        return round(100 * k / max(n, 1), 2)

    named = sum(d.accepted and d.speaker == t for t, d in genuine)
    wrong = sum(d.accepted and d.speaker != t for t, d in genuine)
    unsure = sum(d.unsure for _, d in genuine)
    return {"genuine_correct": pct(named, len(genuine)), "genuine_unsure": pct(unsure, len(genuine)),
            "genuine_rejected": pct(len(genuine) - named - wrong - unsure, len(genuine)),
            "misidentified": pct(wrong, len(genuine)),
            "unknown_accepted": pct(sum(d.accepted for d in strangers), len(strangers)),
            "unknown_unsure": pct(sum(d.unsure for d in strangers), len(strangers)),
            "n_genuine": len(genuine), "n_unknown": len(strangers)}


def sessions(recognizer: Recognizer, people: dict[str, Roles], vecs: dict[str, np.ndarray], enrolled: list[str],
             profiles: dict[str, np.ndarray]) -> list[dict]:
    out = []
    estimate = recognizer.room
    heard = enrolled[:: max(len(enrolled) // ROOM_HEARD, 1)][:ROOM_HEARD]
    for cond in CONDITIONS:
        for room_on in (False, True) if estimate is not None else (False,):
            recognizer.room = None
            if room_on:
                recognizer.room = RoomEstimate(estimate.cohort_mean, estimate.blend, estimate.prior)
                for who in heard:
                    for r in people[who].test:
                        recognizer.room.hear(vecs[in_family(r, cond)])
            for n in (1, 2, 3):
                attempts = [(who if who in enrolled else None,
                             unit(np.mean([vecs[in_family(r, cond)] for r in g], axis=0)))
                            for who in sorted(people) for g in groups(people[who].test, n)]
                for policy in POLICIES:
                    recognizer.policy_override = policy
                    decided = [(t, recognizer.decide(profiles, e, n)) for t, e in attempts]
                    out.append({"condition": cond, "room": room_on, "utterances": n, "policy": policy, **tally(decided)})
    recognizer.room = None
    return out


def last_decision(recognizer: Recognizer, profiles: dict[str, np.ndarray], talk: list[np.ndarray]) -> Decision:
    """The decision at the last of `talk`'s utterances, in sessions as the CLI's --session forms them."""
    tracker = recognizer.session_tracker(gap_s=None)
    return [recognizer.judge(profiles, v, 2.0, False, tracker, now=0.0)[0] for v in talk][-1]


def conversations(recognizer: Recognizer, people: dict[str, Roles], vecs: dict[str, np.ndarray],
                  enrolled: list[str], profiles: dict[str, np.ndarray]) -> list[dict]:
    recognizer.policy_override = "far1"
    strangers = [p for p in sorted(people) if p not in enrolled]
    configured, out = recognizer.cfg, []
    for cond in ("clean", "noisy", "channel"):
        def vec(rel: str, cond: str = cond) -> np.ndarray:
            return vecs[in_family(rel, cond)]

        for join_far in JOIN_FARS:
            recognizer.cfg = recognizer.cfg.override(**{"session.join_far": join_far})
            talks = [(w, people[w].test[i:i + 3]) for w in enrolled for i in range(len(people[w].test) - 2)]
            decided = [(w, last_decision(recognizer, profiles, [vec(r) for r in talk])) for w, talk in talks]
            named = [d.accepted and d.speaker == w for w, d in decided]
            row = {"condition": cond, "join_far": join_far, "genuine_named_3": round(100 * np.mean(named), 2)}
            for owner_utts in (1, 2):
                rides = [last_decision(recognizer, profiles, [*(vec(r) for r in people[w].test[:owner_utts]), vec(r)])
                         for w in enrolled for s in strangers for r in people[s].test[:2]]
                row[f"stranger_after_{owner_utts}_accepted"] = round(100 * np.mean([d.accepted for d in rides]), 2)
            row["n_genuine"], row["n_rides"] = len(talks), len(rides)
            out.append(row)
    recognizer.cfg = configured
    return out


def room(people: dict[str, Roles], vecs: dict[str, np.ndarray], profiles: dict[str, np.ndarray],
         cohort_mean: np.ndarray, seed: int = 0) -> list[dict]:
    """Single-recording EER per condition, centred on k heard people's mean blended with the cohort's."""
    rng = np.random.default_rng([seed, 61])
    names = sorted(people)
    out = []
    for cond in CONDITIONS:
        tests = [(who, vecs[in_family(r, cond)]) for who in names for r in people[who].test]
        scores = centred_scores(profiles, tests)
        base = eer(*scores(np.zeros_like(cohort_mean)))[0]
        row = {"condition": cond, "none": round(base, 2), "cohort_only": round(eer(*scores(ROOM_BLEND * cohort_mean))[0], 2)}
        for k in ROOM_PEOPLE:
            heard = [names[i] for i in rng.choice(len(names), size=k, replace=False)]
            room_mean = np.mean([v for who, v in tests if who in heard], axis=0)
            row[f"heard_{k}"] = round(eer(*scores(ROOM_BLEND * room_mean + (1 - ROOM_BLEND) * cohort_mean))[0], 2)
        out.append(row)
    return out


def centred_scores(profiles: dict[str, np.ndarray], tests: list[tuple[str, np.ndarray]]):
    """(labels, scores) of every test against every profile, both centred on a given vector."""
    def scores(centre: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        prof = {n: unit(p - centre) for n, p in profiles.items()}
        pairs = [(int(o == who), float(prof[o] @ unit(v - centre))) for who, v in tests for o in prof]
        return np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs])
    return scores


def refresh(recognizer: Recognizer, people: dict[str, Roles], vecs: dict[str, np.ndarray], enrolled: list[str],
            cfg: RefreshConfig) -> list[dict]:
    """Open set on the second half of the test recordings, profiles refreshed (or not) on the first."""
    out = []
    for cond in CONDITIONS:
        for on in (False, True):
            profiles, added = {}, 0
            for who in enrolled:
                enrol = [vecs[r] for r in people[who].enroll]
                recent: list[np.ndarray] = []
                half = people[who].test[: len(people[who].test) // 2]
                for r in half if on else []:
                    v = vecs[in_family(r, cond)]
                    current = {**{w: profile_of([vecs[x] for x in people[w].enroll]) for w in enrolled},
                               who: profile_of(enrol + recent)}
                    recognizer.policy_override = cfg.policy
                    strict = recognizer.decide(current, v, 1)
                    candidate = profile_of(enrol + (recent + [v])[-cfg.max_recent:])
                    if strict.accepted and strict.speaker == who and float(candidate @ profile_of(enrol)) >= cfg.min_similarity:
                        recent, added = (recent + [v])[-cfg.max_recent:], added + 1
                profiles[who] = profile_of(enrol + recent)
            recognizer.policy_override = "far1"
            attempts = [(who if who in enrolled else None, vecs[in_family(r, cond)]) for who in sorted(people)
                        for r in people[who].test[len(people[who].test) // 2:]]
            decided = [(t, recognizer.decide(profiles, e, 1)) for t, e in attempts]
            out.append({"condition": cond, "refresh": on, "refreshes": added, **tally(decided)})
    return out


def run(model: Path, dev: Path, half: str, n_enrolled: int) -> dict:
    people = roles(dev, half)
    vecs = embed_half(model, dev, people)
    enrolled = draw(sorted(people), n_enrolled)
    profiles = {w: profile_of([vecs[r] for r in people[w].enroll]) for w in enrolled}
    bundle = Bundle.load(model)
    cohort_mean = np.mean(bundle.cohort, axis=0) if bundle.cohort is not None else np.zeros(bundle.embedding_dim)
    with tempfile.TemporaryDirectory() as tmp, Store(Path(tmp) / "s.db") as store:
        cfg = Config(model=str(model), store=str(Path(tmp) / "s.db"), room=RoomConfig(enabled=bundle.room is not None))
        recognizer = Recognizer(cfg, store, "far1", bundle=bundle)
        return {"model": str(model), "half": half, "enrolled": enrolled,
                "unknown": [p for p in sorted(people) if p not in enrolled],
                "sessions": sessions(recognizer, people, vecs, enrolled, profiles),
                "conversations": conversations(recognizer, people, vecs, enrolled, profiles),
                "room": room(people, vecs, {w: profile_of([vecs[r] for r in people[w].enroll]) for w in people},
                              cohort_mean),
                "refresh": refresh(recognizer, people, vecs, enrolled, RefreshConfig(enabled=True))}


def main(argv: list[str] | None = None) -> int:
    p = household_arguments(__doc__)
    p.add_argument("--json", required=True, type=Path)
    a = p.parse_args(argv)
    result = run(a.model, a.dev, a.half, a.enrolled)
    a.json.parent.mkdir(parents=True, exist_ok=True)
    a.json.write_text(json.dumps(result, indent=1) + "\n")
    for key in ("sessions", "conversations", "room", "refresh"):
        for row in result[key]:
            print(key, json.dumps(row))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
