"""Open-set identification as a household meets it, through the real CLI (run in .venv-train; the
device commands run in .venv-device).

    python -m scripts.bench.open_set --model models/default --dev data/dev --json build/dev/open_set.json \
        [--half report] [--enrolled 12] [--per-person 4] [--policies far1,far5,eer] [--conditions clean,noisy]

From the development set's report half: `--enrolled` people (seeded pick) are enrolled with
`python -m device enroll NAME --files` from their first `--per-person` recordings; the others are
never enrolled. Every held-out recording of the enrolled and every recording of the others goes
through `python -m device identify --file ... --json` at each policy. Counted per policy:
genuine attempts named correctly / rejected / named as someone else, unknown attempts accepted.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
DEVICE_PY = REPO / ".venv-device" / "bin" / "python"


def people(dev: Path, half: str) -> dict[str, list[str]]:
    """{person: their utterance paths relative to `dev`} for the half, sorted."""
    names = (dev / "splits" / f"{half}.txt").read_text().split()
    return {n: sorted(f"{n}/{p.name}" for p in (dev / n).glob("*.wav")) for n in names}


def device(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run([str(DEVICE_PY), "-m", "device", *args], capture_output=True, text=True, cwd=REPO)
    if check and done.returncode == 2:
        raise SystemExit(f"device {args[0]} failed: {done.stderr.strip()[-500:]}")
    return done


def run(model: Path, dev: Path, half: str, n_enrolled: int, per_person: int, policies: list[str],
        conditions: list[str], seed: int = 0) -> dict:
    everyone = people(dev, half)
    names = sorted(everyone)
    rng = np.random.default_rng([seed, 41])
    enrolled = sorted(names[i] for i in rng.choice(len(names), size=min(n_enrolled, len(names) - 1), replace=False))
    unknown = [n for n in names if n not in enrolled]
    rows, refusals = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        store = str(Path(tmp) / "store.db")
        common = ["--model", str(model), "--store", store]
        for name in enrolled:
            files = [str(dev / p) for p in everyone[name][:per_person]]
            done = device("enroll", name, "--files", *files, *common, "--json")
            refusals[name] = done.stdout.count('"accepted": false')
        for cond in conditions:
            prefix = "" if cond == "clean" else f"_{cond}/"
            attempts = [(n, dev / f"{prefix}{p}") for n in enrolled for p in everyone[n][per_person:]]
            attempts += [(None, dev / f"{prefix}{p}") for n in unknown for p in everyone[n]]
            for policy in policies:
                done = device("identify", "--file", *[str(f) for _, f in attempts], *common, "--policy", policy,
                              "--json", check=False)
                answers = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
                rows.append(tally(cond, policy, attempts, answers, done.stderr.strip()[-500:]))
    return {"model": str(model), "half": half, "enrolled": len(enrolled), "unknown": len(unknown),
            "per_person": per_person, "enrolled_people": enrolled, "unknown_people": unknown,
            "enroll_samples_refused": refusals, "rows": rows}


def tally(cond: str, policy: str, attempts: list[tuple[str | None, Path]], answers: list[dict],
          stderr: str = "") -> dict:
    if len(answers) != len(attempts):
        raise SystemExit(f"identify answered {len(answers)} of {len(attempts)} attempts: {stderr}")
    genuine = [(truth, a) for (truth, _), a in zip(attempts, answers) if truth is not None]
    strangers = [a for (truth, _), a in zip(attempts, answers) if truth is None]

    def pct(n: int, d: int) -> float:
        return round(100 * n / max(d, 1), 2)

    correct = sum(a.get("accepted") and a.get("speaker") == t for t, a in genuine)
    wrong = sum(a.get("accepted") and a.get("speaker") != t for t, a in genuine)
    thresholds = sorted({a["threshold"] for a in answers if "threshold" in a})
    return {"condition": cond, "policy": policy, "threshold": thresholds[0] if len(thresholds) == 1 else thresholds,
            "genuine_correct": pct(correct, len(genuine)), "misidentified": pct(wrong, len(genuine)),
            "genuine_rejected": pct(len(genuine) - correct - wrong, len(genuine)),
            "unknown_accepted": pct(sum(bool(a.get("accepted")) for a in strangers), len(strangers)),
            "n_genuine": len(genuine), "n_unknown": len(strangers),
            "errors": sum("error" in a for a in answers)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, type=Path)
    p.add_argument("--dev", required=True, type=Path)
    p.add_argument("--half", default="report")
    p.add_argument("--enrolled", type=int, default=12)
    p.add_argument("--per-person", type=int, default=4)
    p.add_argument("--policies", default="far1,eer")
    p.add_argument("--conditions", default="clean,noisy")
    p.add_argument("--json", required=True, type=Path)
    a = p.parse_args(argv)
    result = run(a.model.resolve(), a.dev.resolve(), a.half, a.enrolled, a.per_person, a.policies.split(","),
                 a.conditions.split(","))
    a.json.parent.mkdir(parents=True, exist_ok=True)
    a.json.write_text(json.dumps(result, indent=1) + "\n")
    for row in result["rows"]:
        print(json.dumps(row))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
