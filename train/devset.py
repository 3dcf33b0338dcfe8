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

Every recording has a fixed role, listed in `utterances.csv` (speaker, path, role, half, clips,
babble): a person's first 4 utterances (`<person>/000-003.wav`) are `enroll` utterances, the other
8 are `test` utterances (2 and 3 in --small) and KLettres' single clips are `single` (the test side
of the single condition; no noisy, short or channel copies). Every trial pairs an `enroll` file
with a `test` or `single` file. A KLettres person's clips are cut into two disjoint pools:
enrolment words are joined only from the first, test words and single clips only from the second,
so no recorded clip is on both sides of a trial (`clips` names each file's recordings); clips
that hold the same recorded sound (spliced syllables) stay in one pool. The babble
and tv noise of a noisy file holds only other people of the same half (`babble` names them), and
no noisy trial is enrolled by a person heard in its test file's background.

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
language. `summary.json` counts people, target and non-target trials per half and condition.
Everything is seeded: two builds give the same files.
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
from scipy.ndimage import maximum_filter1d

from device.audio import load_audio, save_wav
from train import corpus
from train.channels import CHANNELS, channel, noisy_room_heard

SR = 16000
KLETTRES = Path("/usr/share/klettres")
HALVES = ("calib", "report")
CONDITIONS = ("clean", "noisy", "short", "words", "single", "channel")
TARGETS_PER_PERSON = 10
NONTARGETS_PER_PERSON = 100
MARKER = ".devset"
FIELDS = ("speaker", "source", "package", "version", "voice", "language", "gender", "licence", "half")
UTTERANCE_FIELDS = ("speaker", "path", "role", "half", "clips", "babble")
ROLE_COUNTS = {False: (4, 8), True: (2, 3)}  # (enrolment, test) utterances per person: full build, --small
SINGLES = {False: 8, True: 3}  # single clips per KLettres person
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


@dataclass(frozen=True)
class Utterance:
    """One recording and its fixed role: people are enrolled only on `enroll` recordings and tested
    only on `test` (and `single`) ones. The conditions of an enroll or test recording are
    `_noisy/PATH`, `_short/PATH` and `_channel/KIND/PATH`."""
    speaker: str
    path: str  # relative to the development set's root
    role: str  # 'enroll' | 'test' | 'single' (a KLettres clip on its own, under _single/)
    clips: tuple[str, ...] = ()  # the KLettres recordings it is made of, relative to the person's folder


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


def words_utterances(clips: list[np.ndarray], count: int,
                     rng: np.random.Generator) -> list[tuple[np.ndarray, list[int]]]:
    """`count` utterances of 2-4 s, each with the indices of the clips it holds: at least two
    distinct clips in random order joined by 0.15-0.35 s pauses (a faint noise floor, not digital
    silence). Two clips at least, because one long clip is mostly silence for some people."""
    out = []
    for _ in range(count):
        parts: list[np.ndarray] = []
        used: list[int] = []
        total = 0.0
        for i in rng.permutation(len(clips)):
            if total >= 2.0 and len(used) >= 2:
                break
            if parts:
                pause = rng.uniform(0.15, 0.35)
                parts.append(1e-4 * rng.standard_normal(int(pause * SR)).astype(np.float32))
                total += pause
            parts.append(clips[i])
            used.append(int(i))
            total += clips[i].size / SR
        out.append((np.concatenate(parts)[: 4 * SR], used))
    return out


def recording_groups(clips: list[np.ndarray], span: int = 101, length: int = 128) -> list[list[int]]:
    """The clips grouped by shared recorded sound: some KLettres syllables are spliced from one
    recording, so two clip files can hold the same samples. A stretch shared sample for sample
    gives both clips the same landmarks (samples loudest within `span`) followed by the same
    `length` samples; clips with a landmark in common fall into one group."""
    group = list(range(len(clips)))

    def top(i: int) -> int:
        while group[i] != i:
            i = group[i]
        return i

    seen: dict[bytes, int] = {}
    for i, clip in enumerate(clips):
        x = np.round(np.clip(clip, -1, 1) * 32767).astype(np.int16)  # the samples as saved
        loud = np.abs(x.astype(np.int32))
        marks = np.flatnonzero((maximum_filter1d(loud, span) == loud) & (loud > 50))
        for m in marks[marks + length <= x.size]:
            key = x[m: m + length].tobytes()
            group[top(i)] = top(seen.setdefault(key, i))
    members: dict[int, list[int]] = {}
    for i in range(len(clips)):
        members.setdefault(top(i), []).append(i)
    return list(members.values())


def split_pool(groups: list[list[int]], rng: np.random.Generator) -> tuple[list[int], list[int]]:
    """A person's clip groups (`recording_groups`) dealt in random order into two disjoint pools of
    about equal size, each group whole: (enrolment, test)."""
    enrol: list[int] = []
    test: list[int] = []
    for g in rng.permutation(len(groups)):
        (enrol if len(enrol) <= len(test) else test).extend(groups[g])
    return sorted(enrol), sorted(test)


def _role(index: int, n_enrol: int) -> str:
    return "enroll" if index < n_enrol else "test"


def rhvoice_utterances(rh: list[tuple[Person, corpus.Voice]], n_enrol: int, n_test: int, out: Path, seed: int,
                       pool: ThreadPoolExecutor) -> list[Utterance]:
    """Render every RHVoice person's sentences (unique across the set): the first `n_enrol` enrol."""
    plans = corpus.plan_utterances([v for _, v in rh], n_enrol + n_test, seed + 1000)
    rows = pool.map(lambda pv: corpus.build_speaker(pv[1], plans[pv[1].speaker], out), rh)
    return [Utterance(p.speaker, r["path"], _role(i, n_enrol))
            for (p, _), rs in zip(rh, rows) for i, r in enumerate(rs)]


def klettres_utterances(person: Person, paths: list[Path], counts: tuple[int, int, int], out: Path,
                        rng: np.random.Generator) -> list[Utterance]:
    """`counts` = (enrolment words, test words, single clips) of one KLettres person: enrolment words
    joined from one pool of their clips, test words and single clips from the other."""
    loaded = [(f"{c.parent.name}/{c.name}", _trim(load_audio(c))) for c in paths]
    names, clips = zip(*[(n, a) for n, a in loaded if a.size >= 0.25 * SR])
    enrol_pool, test_pool = split_pool(recording_groups(list(clips)), rng)
    n_enrol, n_test, n_single = counts
    made: list[Utterance] = []
    for role, pool, count in (("enroll", enrol_pool, n_enrol), ("test", test_pool, n_test)):
        for audio, used in words_utterances([clips[i] for i in pool], count, rng):
            rel = f"{person.speaker}/{len(made):03d}.wav"
            _save(out / rel, audio)
            made.append(Utterance(person.speaker, rel, role, tuple(names[pool[i]] for i in used)))
    for i, k in enumerate(rng.choice(len(test_pool), size=min(n_single, len(test_pool)), replace=False)):
        rel = f"_single/{person.speaker}/{i:03d}.wav"
        _save(out / rel, clips[test_pool[k]])
        made.append(Utterance(person.speaker, rel, "single", (names[test_pool[k]],)))
    return made


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
                nontargets: int = NONTARGETS_PER_PERSON,
                heard: dict[str, set[str]] | None = None) -> list[tuple[int, str, str]]:
    """(label, enroll, test) pairs: per person `targets` own pairs and `nontargets` impostor pairs, a
    third enrolled by someone of the same source and gender, a third of the same language where
    there is one, a third by anyone. `heard` names the people in a test file's background noise:
    they never enroll against that file (an impostor's own voice would be in the test)."""
    heard = heard or {}
    trials = []
    for p in people:
        own_e, own_t = enroll_utts[p.speaker], test_utts[p.speaker]
        pairs = [(e, t) for e in own_e for t in own_t]
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
            tests = [t for t in own_t if o.speaker not in heard.get(t, ())]
            if not tests:
                continue
            pair = (enroll_utts[o.speaker][int(rng.integers(len(enroll_utts[o.speaker])))],
                    tests[int(rng.integers(len(tests)))])
            if pair not in seen:
                seen.add(pair)
                trials.append((0, *pair))
    return trials


def _save(path: Path, audio: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    save_wav(path, audio)


def _file_rng(seed: int, rel: str, salt: int) -> np.random.Generator:
    return np.random.default_rng([seed, salt, zlib.crc32(rel.encode())])


def babble_voices(utts: list[Utterance], halves: dict[str, list[str]], root: Path) -> dict[str, list[tuple[str, np.ndarray]]]:
    """Per person, who may be heard behind their noisy files: every other person of the same half
    (never the other half: calibration never hears a report voice), by their first test utterance
    (so no enrolment recording is ever heard behind a test)."""
    first: dict[str, str] = {}
    for u in utts:
        if u.role == "test":
            first.setdefault(u.speaker, u.path)
    audio = {spk: load_audio(root / rel) for spk, rel in first.items()}
    return {spk: [(o, audio[o]) for o in names if o != spk] for names in halves.values() for spk in names}


def _write_variants(root: Path, rel: str, seed: int, voices: list[tuple[str, np.ndarray]]) -> tuple[str, ...]:
    """The noisy, short and channel versions of one recording; returns who is heard in the noisy one."""
    audio = load_audio(root / rel)
    noisy, heard = noisy_room_heard(audio, _file_rng(seed, rel, 31), [a for _, a in voices])
    _save(root / "_noisy" / rel, noisy)
    _save(root / "_short" / rel, audio[: int(1.5 * SR)])
    for kind in CHANNELS:
        _save(root / "_channel" / kind / rel, channel(audio, kind, _file_rng(seed, rel + kind, 32)))
    return tuple(sorted(voices[i][0] for i in heard))


def _by_speaker(utts: list[Utterance], role: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for u in utts:
        if u.role == role:
            out.setdefault(u.speaker, []).append(u.path)
    return out


def condition_trials(people: list[Person], utts: list[Utterance], heard: dict[str, tuple[str, ...]],
                     seed: int, half: str, small: bool) -> dict[str, list[tuple[int, str, str]]]:
    """Every condition's trial list for the people of one half: enrolment files against test files;
    `heard` is who is in each recording's noisy version's background."""
    rng = np.random.default_rng([seed, 22, HALVES.index(half)])
    scale = 4 if small else 1
    enrol, test, singles = (_by_speaker(utts, role) for role in ("enroll", "test", "single"))

    def pairs(who: list[Person], tests: dict[str, list[str]], **kw) -> list[tuple[int, str, str]]:
        return pair_trials(who, enrol, tests, rng, TARGETS_PER_PERSON // scale, NONTARGETS_PER_PERSON // scale, **kw)

    base = pairs(people, test)
    kl = [p for p in people if p.source == "klettres"]
    words, single = (pairs(kl, test), pairs(kl, singles)) if kl else ([], [])
    chan = []
    for label, e, t in base:
        kind = CHANNELS[int(rng.integers(len(CHANNELS)))]
        chan.append((label, f"_channel/{kind}/{e}" if rng.random() < 0.5 else e, f"_channel/{kind}/{t}"))
    noisy = pairs(people, {s: [f"_noisy/{t}" for t in ts] for s, ts in test.items()},
                  heard={f"_noisy/{rel}": set(who) for rel, who in heard.items()})
    return {"clean": base, "noisy": noisy, "short": [(lab, e, f"_short/{t}") for lab, e, t in base],
            "words": words, "single": single, "channel": chan}


def _counts(trials: list[tuple[int, str, str]]) -> dict[str, int]:
    return {"people": len({Path(p).parts[-2] for t in trials for p in t[1:]}),
            "targets": sum(t[0] for t in trials), "nontargets": sum(1 - t[0] for t in trials)}


def write_trials(out: Path, people: list[Person], halves: dict[str, list[str]], utts: list[Utterance],
                 heard: dict[str, tuple[str, ...]], seed: int, small: bool) -> dict[str, dict[str, int]]:
    """splits/<half>.txt and trials/<half>/<condition>.txt; returns their counts by 'half/condition'."""
    (out / "splits").mkdir(exist_ok=True)
    counts = {}
    for half, names in halves.items():
        (out / "splits" / f"{half}.txt").write_text("".join(f"{n}\n" for n in names), encoding="utf-8")
        members = [p for p in people if p.speaker in set(names)]
        for cond, trials in condition_trials(members, utts, heard, seed, half, small).items():
            path = out / "trials" / half / f"{cond}.txt"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("".join(f"{lab} {e} {t}\n" for lab, e, t in trials), encoding="utf-8")
            counts[f"{half}/{cond}"] = _counts(trials)
    return counts


def build(out: Path, small: bool = False, seed: int = 0, workers: int = 2) -> dict:
    """Build the development set into `out`; returns (and writes as summary.json) its make-up."""
    start = time.time()
    if not KLETTRES.is_dir():
        raise SystemExit(f"{KLETTRES}: missing; run scripts/setup_apt.sh (package klettres-data)")
    corpus.prepare_out(out, MARKER, "development set", "train.devset")
    rh, kl = rhvoice_people(), klettres_people()
    if small:
        rh, kl = rh[:4], kl[:4]
    people = [p for p, _ in rh] + [p for p, _ in kl]
    halves = split_halves(people, seed)
    n_enrol, n_test = ROLE_COUNTS[small]
    rng = np.random.default_rng([seed, 20])
    with ThreadPoolExecutor(max_workers=workers) as pool:
        utts = rhvoice_utterances(rh, n_enrol, n_test, out, seed, pool)
        for p, paths in kl:
            utts += klettres_utterances(p, paths, (n_enrol, n_test, SINGLES[small]), out, rng)
        voices = babble_voices(utts, halves, out)
        spoken = [u.path for u in utts if u.role != "single"]
        heard = dict(zip(spoken, pool.map(lambda rel: _write_variants(out, rel, seed, voices[rel.split("/")[0]]), spoken)))
    trial_counts = write_trials(out, people, halves, utts, heard, seed, small)
    half_of = {n: h for h, names in halves.items() for n in names}
    corpus.write_csv(out / "speakers.csv", FIELDS, ({**p.__dict__, "half": half_of[p.speaker]} for p in people))
    corpus.write_csv(out / "utterances.csv", UTTERANCE_FIELDS, (
        {**u.__dict__, "half": half_of[u.speaker], "clips": ";".join(u.clips), "babble": ";".join(heard.get(u.path, ()))}
        for u in utts))
    seconds = sum(load_audio(out / rel).size for rel in spoken) / SR
    summary = {"people": {s: sum(p.source == s for p in people) for s in ("rhvoice", "klettres")},
               "languages": sorted({p.language for p in people}), "utterances": len(spoken),
               "single_clips": sum(u.role == "single" for u in utts), "hours": round(seconds / 3600, 3),
               "per_person": {"enroll": n_enrol, "test": n_test, "single": SINGLES[small]},
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
    b.add_argument("--small", action="store_true",
                   help="4 + 4 people, 2 enrolment + 3 test utterances each (for CI)")
    b.add_argument("--seed", type=int, default=0)
    b.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    build(args.out, args.small, args.seed, args.workers)


if __name__ == "__main__":
    main()
