"""A scripted household day through the real daemon (run in .venv-train; the daemon runs in .venv-device):

    python -m scripts.bench.household_day --model models/default --dev data/dev --json build/dev/household_day.json

Three people of the development set's report half are enrolled (`python -m device enroll`, their
enrolment recordings); a fourth is the television, a fifth a visitor. Their test recordings are
laid out as a day of turns (a person says 2-3 things 1-2 s apart, then silence of 3-20 s) in one
audio file, clean or in the noisy room, and `python -m device run --file DAY --json` (the daemon's
own loop: VAD, sessions, decisions) listens to it. Per person: the share of their utterances
named correctly, unsure, rejected or named wrongly; for the television and the visitor, the share
accepted as someone; and per turn of an enrolled person, the speech heard before the first correct
name (or that it never came). Decisions are matched to utterances by where in the audio the daemon
made them (`heard_at`).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from device.audio import TARGET_SR, load_audio, save_wav
from export.evidence import in_family, roles
from scripts.bench.open_set import DEVICE_PY, REPO

# (who, utterances in the turn, seconds of silence before the turn): a morning at home
SCRIPT = [("a", 3, 3), ("b", 2, 12), ("tv", 3, 4), ("a", 2, 15), ("visitor", 3, 6), ("c", 3, 20), ("b", 3, 9),
          ("tv", 2, 5), ("c", 2, 14), ("a", 3, 10), ("visitor", 2, 18), ("b", 3, 7)]
PAUSE_S = (1.0, 2.0)  # between the utterances of one turn
PEOPLE = ("a", "b", "c", "tv", "visitor")


def cast(dev: Path, seed: int = 0) -> dict[str, str]:
    """Five report-half people, seeded: three enrolled, the television, the visitor."""
    names = sorted(roles(dev, "report"))
    rng = np.random.default_rng([seed, 71])
    return dict(zip(PEOPLE, (names[i] for i in rng.choice(len(names), size=len(PEOPLE), replace=False))))


def lay_out(dev: Path, who: dict[str, str], condition: str, seed: int = 0) -> tuple[np.ndarray, list[dict]]:
    """The day's audio and its utterances in order: (role, file, start and end in seconds, turn)."""
    rng = np.random.default_rng([seed, 72])
    people = roles(dev, "report")
    queue = {r: list(people[who[r]].test) for r in PEOPLE}
    parts: list[np.ndarray] = []
    plan, clock = [], 0.0
    for turn, (role, n, silence) in enumerate(SCRIPT):
        for k in range(n):
            rel = queue[role].pop(0)
            audio = load_audio(dev / in_family(rel, condition))
            gap = silence if k == 0 else rng.uniform(*PAUSE_S)
            parts += [1e-4 * rng.standard_normal(int(gap * TARGET_SR)).astype(np.float32), audio]
            clock += gap
            plan.append({"role": role, "person": who[role], "file": rel, "start": round(clock, 2),
                         "end": round(clock + audio.size / TARGET_SR, 2), "turn": turn})
            clock += audio.size / TARGET_SR
    parts.append(np.zeros(12 * TARGET_SR, np.float32))  # the last session ends in silence
    return np.concatenate(parts), plan


def device(*args: str) -> subprocess.CompletedProcess:
    done = subprocess.run([str(DEVICE_PY), "-m", "device", *args], capture_output=True, text=True, cwd=REPO)
    if done.returncode != 0:
        raise SystemExit(f"device {args[0]} failed: {done.stderr.strip()[-800:]}")
    return done


def listen(model: Path, dev: Path, who: dict[str, str], day: Path) -> list[dict]:
    """Enrol the household and run the daemon on the day; its decisions in order."""
    people = roles(dev, "report")
    with tempfile.TemporaryDirectory() as tmp:
        common = ["--model", str(model), "--store", str(Path(tmp) / "store.db")]
        for role in ("a", "b", "c"):
            device("enroll", who[role], "--files", *[str(dev / p) for p in people[who[role]].enroll], *common, "--json")
        done = device("run", "--file", str(day), *common, "--json")
    return [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]


MISSED = {"decision": "missed", "accepted": False, "speaker": None, "utterances": 0}


def align(plan: list[dict], decisions: list[dict]) -> list[dict]:
    """The daemon's answer to each planned utterance: the last decision made after it started and
    before the next one did (`heard_at`: where in the audio the daemon decided). An utterance the
    VAD joined to the one before it gets none ("missed"); one it cut in two gets its last."""
    answers = [MISSED] * len(plan)
    starts = [u["start"] for u in plan]
    for d in decisions:
        i = int(np.searchsorted(starts, d["heard_at"], side="right")) - 1
        if i >= 0:
            answers[i] = d
    return answers


def score(plan: list[dict], answers: list[dict]) -> dict:
    """Per role: how its utterances were answered; per enrolled turn: speech before the first correct name."""
    out: dict = {"roles": {}, "turns": []}
    for role in PEOPLE:
        mine = [(u, d) for u, d in zip(plan, answers) if u["role"] == role]
        n = len(mine)
        row = {"person": mine[0][0]["person"], "utterances": n,
               "accepted_as_someone": round(100 * sum(d["accepted"] for _, d in mine) / n, 1),
               "unsure": round(100 * sum(d["decision"] == "unsure" for _, d in mine) / n, 1),
               "missed": round(100 * sum(d is MISSED for _, d in mine) / n, 1)}
        if role in ("a", "b", "c"):
            row["named_correctly"] = round(100 * sum(d["accepted"] and d["speaker"] == u["person"] for u, d in mine) / n, 1)
            row["named_wrongly"] = round(100 * sum(d["accepted"] and d["speaker"] != u["person"] for u, d in mine) / n, 1)
        out["roles"][role] = row
    for turn in sorted({u["turn"] for u in plan}):
        mine = [(u, d) for u, d in zip(plan, answers) if u["turn"] == turn]
        if mine[0][0]["role"] not in ("a", "b", "c"):
            continue
        speech, first = 0.0, None
        for u, d in mine:
            speech += u["end"] - u["start"]
            if d["accepted"] and d["speaker"] == u["person"]:
                first = round(speech, 2)
                break
        out["turns"].append({"turn": turn, "role": mine[0][0]["role"], "utterances": len(mine),
                             "speech_to_first_name_s": first, "utterances_used": [d["utterances"] for _, d in mine]})
    named = [t["speech_to_first_name_s"] for t in out["turns"] if t["speech_to_first_name_s"] is not None]
    out["turns_named"] = f"{len(named)} of {len(out['turns'])}"
    out["median_speech_to_first_name_s"] = float(np.median(named)) if named else None
    return out


def run(model: Path, dev: Path, conditions: list[str]) -> dict:
    who = cast(dev)
    result = {"model": str(model), "cast": who, "script": SCRIPT, "conditions": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for condition in conditions:
            audio, plan = lay_out(dev, who, condition)
            day = Path(tmp) / f"day-{condition}.wav"
            save_wav(day, audio)
            decisions = listen(model, dev, who, day)
            answers = align(plan, decisions)
            result["conditions"][condition] = {
                "seconds": round(audio.size / TARGET_SR, 1), "decisions_made": len(decisions), **score(plan, answers),
                "answers": [{**u, "decision": d["decision"], "speaker": d["speaker"], "utterances": d["utterances"]}
                            for u, d in zip(plan, answers)]}
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, type=Path)
    p.add_argument("--dev", required=True, type=Path)
    p.add_argument("--conditions", default="clean,noisy")
    p.add_argument("--json", required=True, type=Path)
    a = p.parse_args(argv)
    result = run(a.model.resolve(), a.dev.resolve(), a.conditions.split(","))
    a.json.parent.mkdir(parents=True, exist_ok=True)
    a.json.write_text(json.dumps(result, indent=1) + "\n")
    for condition, r in result["conditions"].items():
        print(condition, json.dumps({k: v for k, v in r.items() if k != "answers"}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
