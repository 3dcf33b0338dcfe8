"""Open-set identification as a household meets it, through the real CLI (run in .venv-train; the
device commands run in .venv-device).

    python -m scripts.bench.open_set --model models/default --dev data/dev --json build/dev/open_set.json \
        [--half report] [--enrolled 12] [--policies far1,far5,eer] [--conditions clean,noisy] \
        [--sessions 1,2,3] [--session-policies far1]

From the development set's report half: `--enrolled` people (seeded pick) are enrolled with
`python -m device enroll NAME --files` from their enrolment recordings (the dev set's roles); the
others are never enrolled. Every person's test recordings are the attempts, in each condition:
one recording at a time (`python -m device identify --file ... --json`, every policy), and in
sessions of n of them (disjoint groups, `python -m device identify --session --file F1 .. Fn
--json`, one process a session, at `--session-policies`). Counted per row: genuine attempts named
correctly / unsure / rejected / named as someone else, unknown attempts accepted / unsure.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from export.evidence import roles

REPO = Path(__file__).resolve().parents[2]
DEVICE_PY = REPO / ".venv-device" / "bin" / "python"


def device(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run([str(DEVICE_PY), "-m", "device", *args], capture_output=True, text=True, cwd=REPO)
    if check and done.returncode == 2:
        raise SystemExit(f"device {args[0]} failed: {done.stderr.strip()[-500:]}")
    return done


def groups(files: list[str], n: int) -> list[list[str]]:
    """Disjoint sessions of `n` consecutive recordings (a remainder shorter than n is left out)."""
    return [files[i:i + n] for i in range(0, len(files) - n + 1, n)]


def draw(names: list[str], n_enrolled: int, seed: int = 0) -> list[str]:
    """The people enrolled (seeded; at least one is left to be a stranger)."""
    rng = np.random.default_rng([seed, 41])
    return sorted(names[i] for i in rng.choice(len(names), size=min(n_enrolled, len(names) - 1), replace=False))


def household_arguments(description: str) -> argparse.ArgumentParser:
    """The flags every household benchmark shares: which bundle, which dev set and half, how many enrolled."""
    p = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, type=Path)
    p.add_argument("--dev", required=True, type=Path)
    p.add_argument("--half", default="report")
    p.add_argument("--enrolled", type=int, default=12)
    return p


def run(model: Path, dev: Path, half: str, n_enrolled: int, policies: list[str], conditions: list[str],
        sessions: list[int], session_policies: list[str], seed: int = 0) -> dict:
    everyone = roles(dev, half)
    names = sorted(everyone)
    enrolled = draw(names, n_enrolled, seed)
    unknown = [n for n in names if n not in enrolled]
    rows, refusals = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        store = str(Path(tmp) / "store.db")
        common = ["--model", str(model), "--store", store]
        for name in enrolled:
            done = device("enroll", name, "--files", *[str(dev / p) for p in everyone[name].enroll], *common, "--json")
            refusals[name] = done.stdout.count('"accepted": false')
        for cond in conditions:
            prefix = "" if cond == "clean" else f"_{cond}/"
            for n in sessions:
                attempts = [(who if who in enrolled else None, [dev / f"{prefix}{p}" for p in group])
                            for who in names for group in groups(everyone[who].test, n)]
                for policy in policies if n == 1 else session_policies:
                    answers = identify(attempts, common, policy, n)
                    rows.append(tally(cond, policy, n, attempts, answers))
    return {"model": str(model), "half": half, "enrolled": len(enrolled), "unknown": len(unknown),
            "per_person": len(everyone[enrolled[0]].enroll), "enrolled_people": enrolled, "unknown_people": unknown,
            "enroll_samples_refused": refusals, "rows": rows}


def identify(attempts: list[tuple[str | None, list[Path]]], common: list[str], policy: str, n: int) -> list[dict]:
    """The CLI's answers: one process for all single recordings, one per session of several."""
    if n == 1:
        done = device("identify", "--file", *[str(f[0]) for _, f in attempts], *common, "--policy", policy,
                      "--json", check=False)
        answers = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
        if len(answers) != len(attempts):
            raise SystemExit(f"identify answered {len(answers)} of {len(attempts)} attempts: {done.stderr[-500:]}")
        return answers
    out = []
    for _, files in attempts:
        done = device("identify", "--session", "--file", *map(str, files), *common, "--policy", policy, "--json",
                      check=False)
        out.append(json.loads(done.stdout) if done.stdout.startswith("{") else {"error": done.stderr[-300:]})
    return out


def tally(cond: str, policy: str, n: int, attempts: list[tuple[str | None, list[Path]]], answers: list[dict]) -> dict:
    genuine = [(truth, a) for (truth, _), a in zip(attempts, answers) if truth is not None]
    strangers = [a for (truth, _), a in zip(attempts, answers) if truth is None]

    def pct(n: int, d: int) -> float:
        return round(100 * n / max(d, 1), 2)

    correct = sum(a.get("accepted") and a.get("speaker") == t for t, a in genuine)
    wrong = sum(a.get("accepted") and a.get("speaker") != t for t, a in genuine)
    unsure = sum(a.get("decision") == "unsure" for _, a in genuine)
    thresholds = sorted({a["threshold"] for a in answers if "threshold" in a})
    return {"condition": cond, "policy": policy, "utterances": n,
            "threshold": thresholds[0] if len(thresholds) == 1 else thresholds,
            "genuine_correct": pct(correct, len(genuine)), "genuine_unsure": pct(unsure, len(genuine)),
            "misidentified": pct(wrong, len(genuine)),
            "genuine_rejected": pct(len(genuine) - correct - wrong - unsure, len(genuine)),
            "unknown_accepted": pct(sum(bool(a.get("accepted")) for a in strangers), len(strangers)),
            "unknown_unsure": pct(sum(a.get("decision") == "unsure" for a in strangers), len(strangers)),
            "n_genuine": len(genuine), "n_unknown": len(strangers),
            "errors": sum("error" in a for a in answers)}


def main(argv: list[str] | None = None) -> int:
    p = household_arguments(__doc__)
    p.add_argument("--policies", default="far1,eer")
    p.add_argument("--conditions", default="clean,noisy")
    p.add_argument("--sessions", default="1", help="recordings per attempt, e.g. 1,2,3")
    p.add_argument("--session-policies", default="far1", help="policies for attempts of several recordings")
    p.add_argument("--json", required=True, type=Path)
    a = p.parse_args(argv)
    result = run(a.model.resolve(), a.dev.resolve(), a.half, a.enrolled, a.policies.split(","),
                 a.conditions.split(","), [int(n) for n in a.sessions.split(",")], a.session_policies.split(","))
    a.json.parent.mkdir(parents=True, exist_ok=True)
    a.json.write_text(json.dumps(result, indent=1) + "\n")
    for row in result["rows"]:
        print(json.dumps(row))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
