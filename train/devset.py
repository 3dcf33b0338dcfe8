"""The development set: people and channels the model never trained on.

    python -m train.devset build --out data/dev [--small] [--seed 0] [--workers 2]

People (see `speakers.csv` for the provenance of each):
  * every RHVoice voice, one recorded person each: the held-out engine, never in training
    (`train.corpus` leaves RHVoice out by default);
  * real recordings of real people: Debian's `klettres-data`, letters and syllables recorded by
    one person per language folder. Short clips are joined with 0.15-0.35 s pauses into 2-4 s
    "words" utterances, as a person saying a few words would; single clips are kept as well.

People are split, stratified by source, into a *calibration half* (model selection, early
stopping, thresholds, score calibration, cohort) and a *report half* (numbers only).

Conditions, each a VoxCeleb-format trial list per half under `trials/<half>/<condition>.txt`:
  clean    sentences (RHVoice) and words (KLettres), clean enrollment and test
  noisy    test through a random room (early reflections) and household noise at 0-15 dB SNR
  short    the first 1.5 s of the test utterance
  words    KLettres people only: a few words against a few words
  single   KLettres people only: a few words enrolled, one letter or syllable as the test
  channel  test through GSM, AMR-NB, mu-law, low-bitrate Vorbis or a cheap microphone; in half
           the trials the enrollment went through the same channel, so a shared channel cannot
           stand in for a shared person
Targets to non-targets about 1:10; non-targets favour the same source and gender and the same
language. Everything is seeded: two builds give the same files.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from device.audio import load_audio, save_wav
from train import corpus
from train.channels import CHANNELS, channel, noisy_room

SR = 16000
KLETTRES = Path("/usr/share/klettres")
HALVES = ("calib", "report")
CONDITIONS = ("clean", "noisy", "short", "words", "single", "channel")
TARGETS_PER_PERSON = 10
NONTARGETS_PER_PERSON = 100
MARKER = ".devset"
FIELDS = ("speaker", "source", "package", "version", "voice", "language", "gender", "licence", "half")
# Licences of the RHVoice voice data as their Debian packages state them (debian/copyright).
RHVOICE_LICENCE = "see /usr/share/doc/<package>/copyright (voice data licences vary: CC BY-NC-ND 4.0 and others)"


@dataclass(frozen=True)
class Person:
    speaker: str
    source: str  # 'rhvoice' | 'klettres'
    package: str
    version: str
    voice: str
    language: str
    gender: str
    licence: str


def _package_of(path: Path) -> tuple[str, str]:
    """(Debian package, version) that installed `path`."""
    out = subprocess.run(["dpkg", "-S", str(path)], capture_output=True, text=True)
    if out.returncode:
        return "unknown", "unknown"
    package = out.stdout.split(":")[0].strip()
    version = subprocess.run(["dpkg-query", "-W", "-f=${Version}", package], capture_output=True, text=True).stdout
    return package, version or "unknown"


def rhvoice_people() -> list[tuple[Person, corpus.Voice]]:
    people = []
    for v in corpus.rhvoice_voices():
        info = next(d / v.voice / "voice.info" for d in corpus.RHVOICE_DIRS if (d / v.voice / "voice.info").is_file())
        package, version = _package_of(info.parent)
        people.append((Person(v.speaker, "rhvoice", package, version, v.voice, v.language, v.gender, RHVOICE_LICENCE), v))
    return people


def klettres_people() -> list[tuple[Person, list[Path]]]:
    """One person per KLettres language folder that has recordings; their clips, sorted."""
    people = []
    package, version = _package_of(KLETTRES)
    for lang in sorted(p.name for p in KLETTRES.iterdir() if p.is_dir()):
        clips = sorted((KLETTRES / lang).glob("*/*.ogg"))
        if len(clips) >= 8:
            people.append((Person(f"kl-{lang.lower().replace('_', '-')}", "klettres", package, version,
                                  f"klettres/{lang}", lang, "unknown", "GPL-2+ (debian/copyright)"), clips))
    return people


def _trim(audio: np.ndarray, floor_db: float = -35.0) -> np.ndarray:
    """Cut leading and trailing frames quieter than `floor_db` below the clip's peak frame."""
    frame = 160
    n = audio.size // frame
    if n == 0:
        return audio
    energy = 10 * np.log10(np.mean(audio[: n * frame].reshape(n, frame) ** 2, axis=1) + 1e-12)
    loud = np.flatnonzero(energy > energy.max() + floor_db)
    return audio[loud[0] * frame: (loud[-1] + 1) * frame]


def words_utterances(clips: list[np.ndarray], count: int, rng: np.random.Generator) -> list[np.ndarray]:
    """`count` utterances of 2-4 s: distinct clips in random order joined by 0.15-0.35 s pauses
    (a faint noise floor, not digital silence)."""
    out = []
    for _ in range(count):
        parts: list[np.ndarray] = []
        total = 0.0
        for i in rng.permutation(len(clips)):
            if total >= 2.0:
                break
            if parts:
                pause = rng.uniform(0.15, 0.35)
                parts.append(1e-4 * rng.standard_normal(int(pause * SR)).astype(np.float32))
                total += pause
            parts.append(clips[i])
            total += clips[i].size / SR
        out.append(np.concatenate(parts)[: 4 * SR])
    return out


def split_halves(people: list[Person], seed: int) -> dict[str, list[str]]:
    """Half the people of each source to calibration, half to the report, seeded."""
    rng = np.random.default_rng([seed, 21])
    halves: dict[str, list[str]] = {h: [] for h in HALVES}
    for source in sorted({p.source for p in people}):
        names = sorted(p.speaker for p in people if p.source == source)
        names = [names[i] for i in rng.permutation(len(names))]
        halves["calib"] += names[: len(names) // 2]
        halves["report"] += names[len(names) // 2:]
    return {h: sorted(v) for h, v in halves.items()}


def pair_trials(people: list[Person], enroll_utts: dict[str, list[str]], test_utts: dict[str, list[str]],
                rng: np.random.Generator, targets: int = TARGETS_PER_PERSON,
                nontargets: int = NONTARGETS_PER_PERSON) -> list[tuple[int, str, str]]:
    """(label, enroll, test) pairs: per person `targets` own pairs and `nontargets` impostor pairs, a
    third enrolled by someone of the same source and gender, a third of the same language where
    there is one, a third by anyone."""
    trials = []
    for p in people:
        own_e, own_t = enroll_utts[p.speaker], test_utts[p.speaker]
        pairs = [(e, t) for e in own_e for t in own_t if e != t]
        for i in sorted(rng.choice(len(pairs), size=min(targets, len(pairs)), replace=False)):
            trials.append((1, *pairs[i]))
        others = [o for o in people if o.speaker != p.speaker]
        groups = [[o for o in others if (o.source, o.gender) == (p.source, p.gender)],
                  [o for o in others if o.language.split("-")[0].split("_")[0] == p.language.split("-")[0].split("_")[0]],
                  others]
        seen = set()
        for k in range(nontargets if others else 0):
            group = groups[k % 3] or others
            o = group[int(rng.integers(len(group)))]
            pair = (enroll_utts[o.speaker][int(rng.integers(len(enroll_utts[o.speaker])))],
                    own_t[int(rng.integers(len(own_t)))])
            if pair not in seen:
                seen.add(pair)
                trials.append((0, *pair))
    return trials


def _save(path: Path, audio: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    save_wav(path, audio)


def _file_rng(seed: int, rel: str, salt: int) -> np.random.Generator:
    return np.random.default_rng([seed, salt, zlib.crc32(rel.encode())])


def _write_variants(root: Path, rel: str, seed: int, voices: list[np.ndarray]) -> None:
    audio = load_audio(root / rel)
    _save(root / "_noisy" / rel, noisy_room(audio, _file_rng(seed, rel, 31), voices))
    _save(root / "_short" / rel, audio[: int(1.5 * SR)])
    for kind in CHANNELS:
        _save(root / "_channel" / kind / rel, channel(audio, kind, _file_rng(seed, rel + kind, 32)))


def condition_trials(people: list[Person], utts: dict[str, list[str]], singles: dict[str, list[str]],
                     seed: int, half: str, small: bool) -> dict[str, list[tuple[int, str, str]]]:
    """Every condition's trial list for the people of one half."""
    rng = np.random.default_rng([seed, 22, HALVES.index(half)])
    scale = 4 if small else 1
    base = pair_trials(people, utts, utts, rng, TARGETS_PER_PERSON // scale, NONTARGETS_PER_PERSON // scale)
    kl = [p for p in people if p.source == "klettres"]
    words = pair_trials(kl, utts, utts, rng, TARGETS_PER_PERSON // scale, NONTARGETS_PER_PERSON // scale) if kl else []
    single = pair_trials(kl, utts, singles, rng, TARGETS_PER_PERSON // scale, NONTARGETS_PER_PERSON // scale) if kl else []
    chan = []
    for label, e, t in base:
        kind = CHANNELS[int(rng.integers(len(CHANNELS)))]
        chan.append((label, f"_channel/{kind}/{e}" if rng.random() < 0.5 else e, f"_channel/{kind}/{t}"))
    return {"clean": base, "noisy": [(lab, e, f"_noisy/{t}") for lab, e, t in base],
            "short": [(lab, e, f"_short/{t}") for lab, e, t in base], "words": words, "single": single,
            "channel": chan}


def build(out: Path, small: bool = False, seed: int = 0, workers: int = 2) -> dict:
    """Build the development set into `out`; returns (and writes as summary.json) its make-up."""
    start = time.time()
    if not KLETTRES.is_dir():
        raise SystemExit(f"{KLETTRES}: missing; run scripts/setup_apt.sh (package klettres-data)")
    corpus.prepare_out(out, MARKER, "development set", "train.devset")
    rh, kl = rhvoice_people(), klettres_people()
    if small:
        rh, kl = rh[:4], kl[:4]
    n_utts, n_single = (4, 3) if small else (12, 8)
    rng = np.random.default_rng([seed, 20])
    utts: dict[str, list[str]] = {}
    singles: dict[str, list[str]] = {}
    with ThreadPoolExecutor(max_workers=workers) as pool:
        plans = corpus.plan_utterances([v for _, v in rh], n_utts, seed + 1000)
        rows = list(pool.map(lambda pv: corpus.build_speaker(pv[1], plans[pv[1].speaker], out), rh))
        for (p, _), rs in zip(rh, rows):
            utts[p.speaker] = [r["path"] for r in rs]
        for p, paths in kl:
            clips = [c for c in (_trim(load_audio(c)) for c in paths) if c.size >= 0.25 * SR]
            utts[p.speaker], singles[p.speaker] = [], []
            for i, audio in enumerate(words_utterances(clips, n_utts, rng)):
                rel = f"{p.speaker}/{i:03d}.wav"
                _save(out / rel, audio)
                utts[p.speaker].append(rel)
            for i, k in enumerate(rng.choice(len(clips), size=min(n_single, len(clips)), replace=False)):
                rel = f"_single/{p.speaker}/{i:03d}.wav"
                _save(out / rel, clips[k])
                singles[p.speaker].append(rel.removeprefix("_single/"))
        people = [p for p, _ in rh] + [p for p, _ in kl]
        first = {spk: load_audio(out / paths[0]) for spk, paths in utts.items()}
        every = [rel for paths in utts.values() for rel in paths]
        others = {spk: [a for s, a in first.items() if s != spk] for spk in utts}  # babble never holds the talker
        list(pool.map(lambda rel: _write_variants(out, rel, seed, others[rel.split("/")[0]]), every))
    halves = split_halves(people, seed)
    (out / "splits").mkdir(exist_ok=True)
    singles_rel = {s: [f"_single/{r}" for r in rs] for s, rs in singles.items()}
    trial_counts = {}
    for half, names in halves.items():
        (out / "splits" / f"{half}.txt").write_text("".join(f"{n}\n" for n in names), encoding="utf-8")
        members = [p for p in people if p.speaker in set(names)]
        for cond, trials in condition_trials(members, utts, singles_rel, seed, half, small).items():
            path = out / "trials" / half / f"{cond}.txt"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("".join(f"{lab} {e} {t}\n" for lab, e, t in trials), encoding="utf-8")
            trial_counts[f"{half}/{cond}"] = {"targets": sum(t[0] for t in trials), "nontargets": sum(1 - t[0] for t in trials)}
    half_of = {n: h for h, names in halves.items() for n in names}
    corpus.write_csv(out / "speakers.csv", FIELDS, ({**p.__dict__, "half": half_of[p.speaker]} for p in people))
    seconds = sum(load_audio(out / rel).size for rel in every) / SR
    summary = {"people": {s: sum(p.source == s for p in people) for s in ("rhvoice", "klettres")},
               "languages": sorted({p.language for p in people}), "utterances": len(every),
               "single_clips": sum(map(len, singles.values())), "hours": round(seconds / 3600, 3),
               "halves": {h: len(v) for h, v in halves.items()}, "trials": trial_counts, "small": small,
               "seconds_taken": round(time.time() - start, 1)}
    (out / "summary.json").write_text(json.dumps(summary, indent=1), encoding="utf-8")
    print("devset: " + json.dumps({k: v for k, v in summary.items() if k != "trials"}))
    return summary


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m train.devset", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="render, record-join, degrade, split and write trial lists")
    b.add_argument("--out", type=Path, default=Path("data/dev"))
    b.add_argument("--small", action="store_true", help="4 + 4 people, 4 utterances each (for CI)")
    b.add_argument("--seed", type=int, default=0)
    b.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    build(args.out, args.small, args.seed, args.workers)


if __name__ == "__main__":
    main()
