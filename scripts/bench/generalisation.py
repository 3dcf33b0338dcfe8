"""How a bundle does on people and channels it never trained on (run in .venv-train).

    python -m scripts.bench.generalisation --model models/default --dev data/dev \
        [--peer resemblyzer=build/dev/resemblyzer.npz] [--open-set build/dev/open_set.json] \
        --json build/dev/generalisation.json --markdown docs/GENERALISATION.md

Every condition of the development set's *report half* (`train.devset`), scored for: the bundle
through the device code path (cosine, and AS-norm when it ships a cohort), any peer whose
embeddings an npz holds (Resemblyzer, written by its own venv), and the MFCC mean+std baseline
(normalised with calibration-half statistics). Per system and condition: EER with a 95 %
speaker-level bootstrap interval (`train.metrics.eer_interval`: the condition's test people drawn
with replacement), the number of people and trials, minDCF(0.01), Cllr and min-Cllr where the
bundle calibrates its scores, and for the bundle the actual false-accept and false-reject rates at
the threshold the device uses for one claim.
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import numpy as np

from device.bundle import Bundle
from device.policies import DEFAULT_POLICY
from device.scoring import Scorer, unit
from export.calibrate import cllr, min_cllr
from scripts.bench.accuracy import Scores, vector_scores
from scripts.bench.household_report import calibration_markdown, day_markdown, household_markdown, open_set_markdown
from train.datasets import Trial, read_trials
from train.devset import CONDITIONS
from train.evaluate import embed_paths, load_embedder
from train.metrics import eer_interval, summary

BOOTSTRAP_RESAMPLES = 1000


def load_conditions(dev: Path, half: str) -> dict[str, list[Trial]]:
    return {c: read_trials(dev / "trials" / half / f"{c}.txt") for c in CONDITIONS
            if (dev / "trials" / half / f"{c}.txt").exists()}


def files_of(trials: dict[str, list[Trial]], root: Path) -> list[Path]:
    return list(dict.fromkeys(root / p for ts in trials.values() for t in ts for p in t[1:]))


def embedded(trials: dict[str, list[Trial]], root: Path, vecs: dict[Path, np.ndarray]) -> dict[str, list[Trial]]:
    """The trials both of whose files a system embedded (it is scored on these only)."""
    return {c: [t for t in ts if root / t.enroll in vecs and root / t.test in vecs] for c, ts in trials.items()}


def tested_people(trials: list[Trial]) -> list[str]:
    """The person each trial tests (a file's folder names its person, whatever the condition)."""
    return [Path(t.test).parts[-2] for t in trials]


def metrics(labels: np.ndarray, scores: np.ndarray, people: list[str], bundle: Bundle | None = None,
            scoring: str = "") -> dict:
    """EER with its speaker-level bootstrap interval over `people` (trial i tests people[i]), minDCF,
    min-Cllr; for the scoring the bundle decides with: Cllr of its calibrated LLRs and the
    false-accept / false-reject rates at the device's one-claim threshold."""
    low, high = eer_interval(labels, scores, people, BOOTSTRAP_RESAMPLES)
    out = {**summary(labels, scores), "eer_ci95": [round(low, 4), round(high, 4)], "n_people": len(set(people)),
           "min_cllr": round(min_cllr(labels, scores), 4)}
    if bundle is not None and scoring == bundle.scoring:
        threshold = bundle.threshold(bundle.meta.get("policy_default", DEFAULT_POLICY))
        out["device_threshold"] = round(threshold, 4)
        out["fa_at_device"] = round(100 * float(np.mean(scores[labels == 0] >= threshold)), 3)
        out["fr_at_device"] = round(100 * float(np.mean(scores[labels == 1] < threshold)), 3)
        if bundle.calibration is not None:
            out["cllr"] = round(cllr(labels, bundle.calibration.slope * scores + bundle.calibration.offset), 4)
    return out


def systems(model: Path, dev: Path, trials: dict[str, list[Trial]], peers: dict[str, Path]) -> dict[str, dict]:
    embedder = load_embedder(model, threads=1)
    bundle = embedder.bundle
    vecs, problems, _ = embed_paths(embedder, files_of(trials, dev))
    if problems:
        print(f"generalisation: {len(problems)} files could not be embedded: {problems[:3]}")
    kept = embedded(trials, dev, vecs)
    raw, norm = vector_scores(kept, dev, vecs, Scorer(bundle.cohort, bundle.asnorm_top_k or 50))
    out = {"project (cosine)": per_condition(raw, kept, bundle, "cosine")}
    if norm:
        out["project (AS-norm)"] = per_condition(norm, kept, bundle, "asnorm")
    for name, npz in peers.items():
        data = np.load(npz)
        peer = {Path(p): unit(v) for p, v in zip(data["paths"], data["vectors"])}
        kept = embedded(trials, dev, peer)
        out[name] = per_condition(vector_scores(kept, dev, peer)[0], kept)
    out["MFCC mean+std (cosine)"] = per_condition(mfcc_baseline(bundle, dev, trials), trials)
    return out


def per_condition(scores: Scores, trials: dict[str, list[Trial]], bundle: Bundle | None = None,
                  scoring: str = "") -> dict[str, dict]:
    return {c: metrics(*scores[c], tested_people(trials[c]), bundle, scoring) for c in scores}


def mfcc_baseline(bundle: Bundle, dev: Path, trials: dict[str, list[Trial]]) -> Scores:
    from scripts.bench.baselines import MfccStats

    calib = [dev / p for t in load_conditions(dev, "calib").get("clean", []) for p in t[1:]]
    stats = MfccStats(bundle.features).fit(list(dict.fromkeys(calib))[:400])
    return vector_scores(trials, dev, {p: stats.embed(p) for p in files_of(trials, dev)})[0]


def makeup(dev: Path) -> tuple[dict, list[dict]]:
    summary_json = json.loads((dev / "summary.json").read_text())
    with open(dev / "speakers.csv", newline="", encoding="utf-8") as f:
        return summary_json, list(csv.DictReader(f))


def markdown(result: dict, dev: Path, household: list[str]) -> str:
    info, people = makeup(dev)
    conds = result["conditions"]
    lines = ["# Generalisation: people and channels the model never trained on", "",
             f"Bundle `{result['model']}` ({result['bundle_scoring']} scoring, default policy "
             f"`{result['policy']}`), scored on the **report half** of the development set (`{dev}`); nothing is "
             "chosen on this half. Regenerate with `scripts/eval_dev.sh`.", "",
             "## EER % per condition", "",
             "In brackets the 95 % interval of a speaker-level bootstrap: the condition's people drawn with "
             f"replacement {BOOTSTRAP_RESAMPLES} times, each keeping all their trials. Few people make wide intervals: "
             "two systems whose intervals overlap much are not shown apart by this set.", "",
             "| system | " + " | ".join(conds) + " |", "|---|" + "---|" * len(conds)]
    for name, per in result["systems"].items():
        lines.append(f"| {name} | " + " | ".join(_eer_cell(per[c]) for c in conds) + " |")
    first = next(iter(result["systems"].values()))
    lines += ["", "Trials: " + "; ".join(f"{c} {_counts(first[c])}" for c in conds) + ".",
              "", "## Per condition", "",
              "FA / FR at device threshold: the actual false-accept and false-reject rates (%) at the threshold the "
              "device uses for one claim at the default policy. Cllr uses the bundle's score calibration.", ""]
    for c in conds:
        lines += [f"### {c}", "", "| system | EER % [95 %] | minDCF(0.01) | Cllr | min-Cllr | FA % at device thr | "
                  "FR % at device thr |", "|---|---|---|---|---|---|---|"]
        for name, per in result["systems"].items():
            m = per[c]
            lines.append(f"| {name} | {_eer_cell(m)} | {m['min_dcf_p01']:.3f} | {m.get('cllr', '—')} | {m['min_cllr']} | "
                         f"{m.get('fa_at_device', '—')} | {m.get('fr_at_device', '—')} |")
        lines += ["", f"{_counts(first[c])} trials.", ""]
    lines += household
    lines += ["## The development set", "",
              f"{sum(info['people'].values())} people ({', '.join(f'{v} {k}' for k, v in info['people'].items())}), "
              f"{len(info['languages'])} languages, {info['utterances']} utterances + {info['single_clips']} single "
              f"clips, {info['hours']} h before degradation; halves: {info['halves']}. Built by "
              "`scripts/make_devset.sh` (`python -m train.devset build`), seeded and deterministic. Every person has "
              f"{info['per_person']['enroll']} enrolment and {info['per_person']['test']} test utterances "
              "(`utterances.csv`) and every trial enrolls on the one and tests on the other; a KLettres person's "
              "enrolment and test utterances are joined from disjoint halves of their recordings, and the babble of "
              "a noisy test file holds only other people of the same half, never the trial's enrolled person.", "",
              "| person | source | package | version | voice | language | gender | licence | half |",
              "|---|---|---|---|---|---|---|---|---|"]
    lines += [f"| {p['speaker']} | {p['source']} | {p['package']} | {p['version']} | {p['voice']} | {p['language']} | "
              f"{p['gender']} | {p['licence']} | {p['half']} |" for p in people]
    return "\n".join(lines) + "\n"


def _eer_cell(m: dict) -> str:
    low, high = m["eer_ci95"]
    return f"{m['eer']:.1f} [{low:.1f}–{high:.1f}]"


def _counts(m: dict) -> str:
    return f"{m['n_people']} people, {m['n_target']} target / {m['n_nontarget']} non-target"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, type=Path)
    p.add_argument("--dev", required=True, type=Path)
    p.add_argument("--half", default="report")
    p.add_argument("--peer", action="append", default=[], metavar="NAME=NPZ")
    p.add_argument("--open-set", type=Path, help="open_set.json from scripts.bench.open_set")
    p.add_argument("--household", type=Path, help="household.json from scripts.bench.household")
    p.add_argument("--household-day", type=Path, help="household_day.json from scripts.bench.household_day")
    p.add_argument("--json", required=True, type=Path)
    p.add_argument("--markdown", type=Path)
    a = p.parse_args(argv)
    trials = load_conditions(a.dev, a.half)
    bundle = Bundle.load(a.model)
    result = {"model": str(a.model), "half": a.half, "conditions": list(trials), "bundle_scoring": bundle.scoring,
              "policy": bundle.meta.get("policy_default", DEFAULT_POLICY),
              "systems": systems(a.model, a.dev, trials, dict(s.split("=", 1) for s in a.peer))}
    a.json.parent.mkdir(parents=True, exist_ok=True)
    a.json.write_text(json.dumps(result, indent=1) + "\n")
    if a.markdown:
        sections = [calibration_markdown(bundle.meta)]
        for path, section in ((a.open_set, open_set_markdown), (a.household, household_markdown),
                              (a.household_day, day_markdown)):
            if path and path.exists():
                sections.append(section(json.loads(path.read_text())))
        a.markdown.write_text(markdown(result, a.dev, [line for lines in sections for line in lines]))
    for name, per in result["systems"].items():
        print(f"{name:28s} " + "  ".join(f"{c} {v['eer']:.2f}" for c, v in per.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
