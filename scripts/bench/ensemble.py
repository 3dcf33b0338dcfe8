"""What an ensemble of seeds is worth, before anything is distilled from it (run in .venv-train):

    python -m scripts.bench.ensemble build/arms/base-s0 build/arms/base-s1 build/arms/base-s2 \
        --dev data/dev --json build/arms/ensemble-base.json --npz build/arms/ensemble-base.npz

Each bundle embeds the development set's files through the device code path; the ensemble's
embedding of a file is the concatenation of the members' unit embeddings over sqrt(k), so its
cosine is the mean of the members' cosines (score fusion). Per half and per system (each member,
the ensemble): EER and minDCF(0.01) of the calibration pool (`export.evidence`: sessions of 1 and
3 utterances in the clean, noisy, 1.5 s and channel families, every person of the half enrolled),
and EER per family. The calibration half decides, as for arms (docs/TRAINING.md); the npz
(`paths`, `vectors` of the report half's trial files) lets `scripts.bench.generalisation --peer`
score the ensemble on every report condition.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from device.scoring import unit
from export import evidence
from scripts.bench.generalisation import files_of, load_conditions
from train.evaluate import embed_paths, load_embedder
from train.metrics import eer, summary

HALVES = ("calib", "report")


def member_vectors(bundle: Path, dev: Path, rels: list[str]) -> dict[str, np.ndarray]:
    """{dev-relative path: unit embedding} of `rels` through the bundle's device embedder."""
    found, problems, _ = embed_paths(load_embedder(bundle, threads=1), [dev / r for r in rels])
    if problems:
        raise SystemExit(f"ensemble: {bundle}: {len(problems)} files could not be embedded: {problems[:3]}")
    return {str(p.relative_to(dev)): unit(v) for p, v in found.items()}


def fuse(members: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Concatenated unit embeddings over sqrt(k): cosine = the mean of the members' cosines."""
    k = len(members)
    return {r: np.concatenate([m[r] for m in members]) / np.sqrt(k) for r in members[0]}


def pool(people: dict[str, evidence.Roles], vecs: dict[str, np.ndarray]) -> dict:
    """The calibration pool's figures for sessions of 1 and 3 utterances."""
    out = {}
    for n in (1, 3):
        trials = evidence.session_trials(people, vecs, n)
        scores = trials.scores()
        families = {f: round(eer(trials.labels[trials.family == f], scores[trials.family == f])[0], 3)
                    for f in evidence.FAMILIES}
        out[str(n)] = {**summary(trials.labels, scores), "families": families}
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("bundles", nargs="+", type=Path)
    p.add_argument("--dev", required=True, type=Path)
    p.add_argument("--json", required=True, type=Path)
    p.add_argument("--npz", type=Path, help="the ensemble's vectors of the report half's trial files")
    a = p.parse_args(argv)
    people = {h: evidence.roles(a.dev, h) for h in HALVES}
    report_files = [str(f.relative_to(a.dev)) for f in files_of(load_conditions(a.dev, "report"), a.dev)]
    rels = list(dict.fromkeys([*(r for h in HALVES for r in evidence.files_needed(people[h])), *report_files]))
    members = [member_vectors(b, a.dev, rels) for b in a.bundles]
    systems = {**{str(b): m for b, m in zip(a.bundles, members)}, "ensemble": fuse(members)}
    result = {name: {h: pool(people[h], vecs) for h in HALVES} for name, vecs in systems.items()}
    a.json.parent.mkdir(parents=True, exist_ok=True)
    a.json.write_text(json.dumps(result, indent=1) + "\n")
    if a.npz:
        vecs = systems["ensemble"]
        np.savez(a.npz, paths=np.array([str(a.dev / r) for r in report_files]),
                 vectors=np.stack([vecs[r] for r in report_files]))
    for name, halves in result.items():
        cells = [f"{h} n={n}: {halves[h][n]['eer']:.2f} / {halves[h][n]['min_dcf_p01']:.3f}"
                 for h in HALVES for n in ("1", "3")]
        print(f"{name}: " + " | ".join(cells))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
