"""Synthetic multi-speaker corpus from Debian speech engines whose voices are each one real person.

    python -m train.corpus build --out data/corpus [--engines mbrola,espeak] [--espeak-voices N]
        [--speakers N] [--utts 24] [--espeak-utts N] [--split 0.7,0.1,0.2] [--seed 0] [--workers 2]

MBROLA diphone voices (through espeak-ng) and RHVoice voices give ~90 distinct people; espeak-ng
formant voices with seeded random parameters (`train.espeak_voices`) add as many more as asked for.
RHVoice is the development set's held-out engine (`train.devset`), so the training corpus leaves
it out by default (`--engines mbrola,espeak`). Each utterance is a different seeded sentence at a
seeded rate and pitch, trimmed of silence and written as 16 kHz mono 16-bit WAV with `sox -R`, so
two builds are byte-identical.

Output layout (all paths in lists are relative to the corpus folder):
    .corpus (marker), <speaker>/<utt>.wav, speakers.csv, utterances.csv, splits/{train,val,test}.txt,
    trials_{clean,noisy,short}.txt, _noisy/<speaker>/<utt>.wav, _short/<speaker>/<utt>.wav
"""

from __future__ import annotations

import argparse
import csv
import re
import shutil
import subprocess
import tempfile
import time
import zlib
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from device.audio import load_audio, save_wav
from train.augment import noisy_trial_version
from train.espeak_voices import DRAWN_PREFIX, draw_voice, prepare_data
from train.sentences import sentence

SR = 16000
MIN_S, MAX_S = 2.0, 6.0
SHORT_S = 1.5
SIZES = 4  # sentence sizes 0..3, see train.sentences.sentence
SPLIT_FRACTIONS = {"train": 0.7, "val": 0.1, "test": 0.2}
ENGINES = ("mbrola", "rhvoice", "espeak")
DEFAULT_ENGINES = ("mbrola", "espeak")
TARGETS_PER_SPEAKER = 30
NONTARGETS_PER_SPEAKER = 60

# MBROLA voices that cannot read Latin text or duplicate another voice's person.
MBROLA_EXCLUDED_PREFIXES = ("ar", "hb", "jp")
MBROLA_EXCLUDED = frozenset({"hn1", "tl1", "ma1", "cn1", "bz1", "nl1"})
MBROLA_DB = Path("/usr/share/mbrola")
# RHVoice voices recorded from the same (or a near-identical) person as the voice kept instead.
RHVOICE_DUPLICATES = {"aleksandr": "aleksandr-hq", "evgeniy-rus": "evgeniy-eng", "Leticia-F123": "hana"}
RHVOICE_DIRS = (Path("/usr/share/RHVoice/voices"), Path("/usr/local/share/RHVoice/voices"))
CYRILLIC_LANGUAGES = frozenset({"Russian", "Ukrainian", "Kyrgyz", "Tatar", "Macedonian"})
PROBE_TEXT = {"latin": "The careful baker opened seven boxes near the river.",
              "cyrillic": "Мастер утром нашел подарок на берегу."}
SPEAKER_FIELDS = ("speaker", "engine", "voice", "language", "gender")
MARKER = ".corpus"
UTTERANCE_FIELDS = ("speaker", "utt", "path", "seconds", "rate", "pitch", "text")


@dataclass(frozen=True)
class Voice:
    speaker: str
    engine: str
    voice: str
    language: str
    gender: str
    data_path: str = ""  # espeak-ng --path for the drawn espeak voices

    @property
    def script(self) -> str:
        return "cyrillic" if self.language in CYRILLIC_LANGUAGES else "latin"


@dataclass(frozen=True)
class UttPlan:
    name: str
    texts: tuple[str, ...]  # one candidate per sentence size
    rate: float
    pitch: float


# ---------------------------------------------------------------- voices

def mbrola_voices() -> list[Voice]:
    """One voice per MBROLA database that espeak-ng knows and that is installed."""
    out = subprocess.run(["espeak-ng", "--voices=mb"], capture_output=True, text=True, check=True).stdout
    voices = {}
    for line in out.splitlines()[1:]:
        cols = line.split()
        match = re.fullmatch(r"mb/mb-([a-z]{2}\d)", cols[4]) if len(cols) >= 5 else None
        if not match:
            continue
        code = match.group(1)
        if code.startswith(MBROLA_EXCLUDED_PREFIXES) or code in MBROLA_EXCLUDED or not (MBROLA_DB / code / code).is_file():
            continue
        gender = {"M": "male", "F": "female"}.get(cols[2][-1], "unknown")
        voices[code] = Voice(f"mb-{code}", "mbrola", f"mb-{code}", cols[1], gender)
    return [voices[c] for c in sorted(voices)]


def _voice_info(path: Path) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in path.read_text(encoding="utf-8", errors="replace").splitlines() if "=" in line)
    return {k.strip(): v.strip() for k, v in pairs}


def rhvoice_voices() -> list[Voice]:
    """Installed RHVoice voices, one per person."""
    voices = {}
    for base in RHVOICE_DIRS:
        for info_path in sorted(base.glob("*/voice.info")) if base.is_dir() else []:
            name = info_path.parent.name
            if name in RHVOICE_DUPLICATES or name in voices:
                continue
            info = _voice_info(info_path)
            voices[name] = Voice(f"rh-{name.lower()}", "rhvoice", name, info.get("language", "unknown"),
                                 info.get("gender", "unknown").lower())
    return [voices[n] for n in sorted(voices, key=str.lower)]


def espeak_voices(n: int, seed: int, root: Path) -> list[Voice]:
    """`n` seeded random espeak-ng formant voices, their variant files written under `root`."""
    drawn = [draw_voice(i, seed) for i in range(n)]
    paths = prepare_data(root, drawn)
    return [Voice(f"{DRAWN_PREFIX}{d.name}", "espeak", f"{d.language}+{d.name}", d.language, d.gender, str(paths[d.name]))
            for d in drawn]


def discover_voices(engines: Iterable[str] = DEFAULT_ENGINES, espeak: list[Voice] | None = None) -> list[Voice]:
    """All candidate voices of `engines` in a fixed order alternating engines, so the first N mix them."""
    found = {"mbrola": mbrola_voices, "rhvoice": rhvoice_voices, "espeak": lambda: list(espeak or [])}
    lists = [found[e]() for e in engines]
    mixed = []
    for i in range(max(map(len, lists), default=0)):
        mixed += [voices[i] for voices in lists if i < len(voices)]
    return mixed


# ---------------------------------------------------------------- synthesis

def _run(cmd: list[str], stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, input=stdin, capture_output=True, text=True, encoding="utf-8")


def _mbrola(voice: Voice, text: str, rate: float, pitch: float, raw: Path) -> bool:
    """espeak-ng writes MBROLA phonemes and the mbrola binary renders them.

    Not `espeak-ng -w`: its built-in MBROLA link gives slightly different samples run to run for
    some voices (e.g. mb-nz1, mb-in2), while standalone mbrola on the same phonemes is repeatable.
    """
    code = voice.voice.removeprefix("mb-")
    pho = _run(["espeak-ng", "-q", "-v", voice.voice, "-s", str(round(165 * rate)), "-p", str(round(50 * pitch)),
                "--pho", text])
    if pho.returncode != 0 or not pho.stdout.strip():
        return False
    return _run(["mbrola", "-e", str(MBROLA_DB / code / code), "-", str(raw)], stdin=pho.stdout).returncode == 0


def synthesize(voice: Voice, text: str, rate: float, pitch: float, out: Path, tmp: Path,
               max_s: float | None = None) -> float:
    """Speak `text` into `out` (16 kHz mono 16-bit, silence trimmed, peak -3 dBFS); returns seconds, 0 on failure."""
    raw = tmp / f"{out.stem}.raw.wav"
    raw.unlink(missing_ok=True)
    if voice.engine == "mbrola":
        ok = _mbrola(voice, text, rate, pitch, raw)
    elif voice.engine == "espeak":
        ok = _run(["espeak-ng", f"--path={voice.data_path}", "-v", voice.voice, "-s", str(round(165 * rate)),
                   "-p", str(round(50 * pitch)), "-w", str(raw), text]).returncode == 0
    else:
        ok = _run(["RHVoice-test", "-p", voice.voice, "-r", str(round(100 * rate)), "-t", str(round(100 * pitch)),
                   "-o", str(raw)], stdin=text).returncode == 0
    if not ok or not raw.exists() or raw.stat().st_size < 1000:
        return 0.0
    effects = ["silence", "1", "0.02", "0.5%", "reverse", "silence", "1", "0.02", "0.5%", "reverse"]
    effects += ["trim", "0", str(max_s)] if max_s else []
    if _run(["sox", "-R", str(raw), "-r", str(SR), "-c", "1", "-b", "16", str(out), *effects, "norm", "-3"]).returncode:
        return 0.0
    return sf.info(str(out)).frames / SR


def probe(voice: Voice) -> bool:
    """One quick synthesis: the voice must run and give at least a second of non-silent speech."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "probe.wav"
        if synthesize(voice, PROBE_TEXT[voice.script], 1.0, 1.0, out, Path(tmp)) < 1.0:
            return False
        audio, _ = sf.read(str(out), dtype="float32")
        return float(np.sqrt(np.mean(audio**2))) > 0.01


def _speak_utterance(voice: Voice, plan: UttPlan, out: Path, tmp: Path) -> tuple[float, str]:
    """Start with a medium sentence and step to shorter/longer ones until it lasts 2-6 s (cut at 6 s if never)."""
    size = 1
    seconds = synthesize(voice, plan.texts[size], plan.rate, plan.pitch, out, tmp)
    step = -1 if seconds > MAX_S else 1 if 0 < seconds < MIN_S else 0
    while step and 0 <= size + step < SIZES and (seconds > MAX_S if step < 0 else seconds < MIN_S):
        size += step
        seconds = synthesize(voice, plan.texts[size], plan.rate, plan.pitch, out, tmp)
    if seconds > MAX_S:
        seconds = synthesize(voice, plan.texts[size], plan.rate, plan.pitch, out, tmp, max_s=MAX_S)
    if seconds == 0:
        raise RuntimeError(f"{voice.speaker}: synthesis failed for {plan.name}")
    return seconds, plan.texts[size]


def build_speaker(voice: Voice, plans: list[UttPlan], root: Path) -> list[dict]:
    """All utterances of one speaker; returns utterances.csv rows."""
    spk_dir = root / voice.speaker
    spk_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for plan in plans:
            out = spk_dir / f"{plan.name}.wav"
            seconds, text = _speak_utterance(voice, plan, out, Path(tmp))
            rows.append({"speaker": voice.speaker, "utt": plan.name, "path": f"{voice.speaker}/{plan.name}.wav",
                         "seconds": f"{seconds:.3f}", "rate": f"{plan.rate:.3f}", "pitch": f"{plan.pitch:.3f}",
                         "text": text})
    return rows


def plan_utterances(voices: list[Voice], utts: int, seed: int,
                    espeak_utts: int | None = None) -> dict[str, list[UttPlan]]:
    """Seeded sentences (unique across the whole corpus), rates and pitches for every utterance."""
    rng = np.random.default_rng([seed, 1])
    used: set[str] = set()
    plans: dict[str, list[UttPlan]] = {}
    for voice in voices:
        plans[voice.speaker] = []
        for i in range(espeak_utts if voice.engine == "espeak" and espeak_utts else utts):
            texts = []
            for size in range(SIZES):
                text = sentence(rng, voice.script, size)
                while text in used:
                    text = sentence(rng, voice.script, size)
                used.add(text)
                texts.append(text)
            rate, pitch = rng.uniform(0.85, 1.15), rng.uniform(0.88, 1.12)
            plans[voice.speaker].append(UttPlan(f"{i:03d}", tuple(texts), float(rate), float(pitch)))
    return plans


def select_voices(candidates: list[Voice], n: int | None, pool: ThreadPoolExecutor,
                  workers: int) -> tuple[list[Voice], list[Voice]]:
    """Probe candidates in order (in batches of `workers`) until `n` work; returns (kept, failed)."""
    kept: list[Voice] = []
    failed: list[Voice] = []
    step = max(workers, 1) if n else len(candidates)
    for start in range(0, len(candidates), step):
        batch = candidates[start: start + step]
        for voice, ok in zip(batch, pool.map(probe, batch)):
            (kept if ok else failed).append(voice)
        if n and len(kept) >= n:
            return kept[:n], failed
    return kept, failed


# ---------------------------------------------------------------- splits and trials

def _split_sizes(n: int, fractions: dict[str, float] = SPLIT_FRACTIONS) -> dict[str, int]:
    """Global split sizes. Test and validation each get at least two speakers (non-target trials need
    two) when n >= 3 and n >= 6 respectively."""
    test = max(2, round(n * fractions["test"])) if n >= 3 else round(n * fractions["test"])
    val = round(n * fractions["val"])
    val = min(max(2, val) if n >= 6 else val, n - test - 1) if n > test else 0
    return {"train": n - test - val, "val": val, "test": test}


def _stratum_quotas(sizes: dict[tuple[str, str], int], totals: dict[str, int]) -> dict[tuple, int]:
    """Integer (stratum, split) counts with the given row and column sums, closest to proportional:
    floors of the exact shares, then +1 by largest remainder wherever both row and column still need one."""
    n = sum(sizes.values())
    exact = {(g, s): sizes[g] * totals[s] / n for g in sizes for s in totals}
    quota = {c: int(v) for c, v in exact.items()}
    order = sorted(exact, key=lambda c: (quota[c] - exact[c], c))
    changed = True
    while changed:
        changed = False
        for g, s in order:
            if sum(quota[g, t] for t in totals) < sizes[g] and sum(quota[h, s] for h in sizes) < totals[s]:
                quota[g, s] += 1
                changed = True
    return quota


def split_speakers(voices: list[Voice], seed: int, fractions: dict[str, float] = SPLIT_FRACTIONS) -> dict[str, list[str]]:
    """Speaker-disjoint split (~70/10/20 by default), stratified by (engine, gender), seeded."""
    rng = np.random.default_rng([seed, 2])
    strata: dict[tuple[str, str], list[str]] = {}
    for v in voices:
        strata.setdefault((v.engine, v.gender), []).append(v.speaker)
    quota = _stratum_quotas({g: len(m) for g, m in strata.items()}, _split_sizes(len(voices), fractions))
    splits: dict[str, list[str]] = {name: [] for name in SPLIT_FRACTIONS}
    for g in sorted(strata):
        members = [strata[g][i] for i in rng.permutation(len(strata[g]))]
        for name in SPLIT_FRACTIONS:
            splits[name] += members[: quota[g, name]]
            members = members[quota[g, name]:]
    return {name: sorted(spks) for name, spks in splits.items()}


def make_trials(test_speakers: list[Voice], utts: dict[str, list[str]], seed: int) -> list[tuple[int, str, str]]:
    """(label, enroll, test) utterance-path triples over test speakers only.

    Per speaker: up to 30 target pairs and 60 non-targets, half of the non-targets enrolled by
    another speaker of the same engine and gender, so engine or gender alone cannot separate them.
    """
    rng = np.random.default_rng([seed, 3])
    trials: list[tuple[int, str, str]] = []
    for spk in test_speakers:
        own = utts[spk.speaker]
        pairs = [(e, t) for e in own for t in own if e != t]
        for i in sorted(rng.choice(len(pairs), size=min(TARGETS_PER_SPEAKER, len(pairs)), replace=False)):
            trials.append((1, *pairs[i]))
        same = [o.speaker for o in test_speakers if o != spk and (o.engine, o.gender) == (spk.engine, spk.gender)]
        others = [o.speaker for o in test_speakers if o != spk]
        if not others:
            continue
        seen = set()
        for k in range(NONTARGETS_PER_SPEAKER):
            group = same if same and k % 2 == 0 else others
            enroll_spk = group[int(rng.integers(len(group)))]
            pair = (utts[enroll_spk][int(rng.integers(len(utts[enroll_spk])))], own[int(rng.integers(len(own)))])
            if pair not in seen:
                seen.add(pair)
                trials.append((0, *pair))
    return trials


def _file_rng(seed: int, rel: str) -> np.random.Generator:
    return np.random.default_rng([seed, 4, zlib.crc32(rel.encode())])


def write_variants(root: Path, rel: str, seed: int) -> None:
    """The noisy (reverb + noise at 10 dB SNR) and short (first 1.5 s of speech) versions of one utterance."""
    audio = load_audio(root / rel)
    for folder, data in (("_noisy", noisy_trial_version(audio, _file_rng(seed, rel))), ("_short", audio[: int(SHORT_S * SR)])):
        dest = root / folder / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        save_wav(dest, data)


def _write_lines(path: Path, lines: Iterable[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")


def write_csv(path: Path, fields: tuple[str, ...], rows: Iterable[dict]) -> None:
    """`rows` as CSV with `fields` as the header (keys beyond them are left out)."""
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=fields, lineterminator="\n", extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


# ---------------------------------------------------------------- build

def prepare_out(out: Path, marker: str = MARKER, what: str = "corpus", builder: str = "train.corpus") -> None:
    """A previous (possibly half-built) output, recognised by its marker file, is replaced;
    any other non-empty folder is refused rather than deleted."""
    if out.exists() and any(out.iterdir()):
        if not (out / marker).exists():
            raise SystemExit(f"{out}: exists, is not empty and is not a {what}; refusing to overwrite")
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / marker).write_text(f"{what} built by python -m {builder}\n", encoding="utf-8")


def build(out: Path, speakers: int | None = None, utts: int = 24, seed: int = 0, workers: int = 2,
          log: Callable[[str], None] = print, engines: Iterable[str] = DEFAULT_ENGINES, espeak_voices_n: int = 0,
          espeak_utts: int | None = None, fractions: dict[str, float] = SPLIT_FRACTIONS) -> dict:
    """Build the corpus into `out`; returns the summary it prints."""
    start = time.time()
    prepare_out(out)
    engines = tuple(engines)
    espeak = espeak_voices(espeak_voices_n, seed, out / ".espeak") if "espeak" in engines else []
    with ThreadPoolExecutor(max_workers=workers) as pool:
        voices, failed = select_voices(discover_voices(engines, espeak), speakers, pool, workers)
        if len(voices) < 2:
            raise SystemExit(f"only {len(voices)} working voices; run scripts/setup_apt.sh")
        log(f"corpus: {len(voices)} voices ({len(failed)} failed the probe: {[v.speaker for v in failed]})")
        plans = plan_utterances(voices, utts, seed, espeak_utts)
        rows = [r for rs in pool.map(lambda v: build_speaker(v, plans[v.speaker], out), voices) for r in rs]
        write_csv(out / "speakers.csv", SPEAKER_FIELDS, (asdict(v) for v in voices))
        write_csv(out / "utterances.csv", UTTERANCE_FIELDS, rows)
        splits = split_speakers(voices, seed, fractions)
        for name, spks in splits.items():
            _write_lines(out / "splits" / f"{name}.txt", spks)
        by_spk: dict[str, list[str]] = {}
        for r in rows:
            by_spk.setdefault(r["speaker"], []).append(r["path"])
        test = [v for v in voices if v.speaker in set(splits["test"])]
        list(pool.map(lambda rel: write_variants(out, rel, seed), [p for v in test for p in by_spk[v.speaker]]))
    trials = make_trials(test, by_spk, seed)
    for cond, prefix in (("clean", ""), ("noisy", "_noisy/"), ("short", "_short/")):
        _write_lines(out / f"trials_{cond}.txt", (f"{lab} {e} {prefix}{t}" for lab, e, t in trials))
    seconds = [float(r["seconds"]) for r in rows]
    summary = {
        "voices": {eng: sum(v.engine == eng for v in voices) for eng in engines},
        "failed_probe": [v.speaker for v in failed], "people": len(voices), "utterances": len(rows),
        "hours": round(sum(seconds) / 3600, 3), "min_s": min(seconds), "max_s": max(seconds),
        "splits": {k: len(v) for k, v in splits.items()},
        "trials_per_list": len(trials), "targets": sum(t[0] for t in trials),
        "seconds_taken": round(time.time() - start, 1),
    }
    log("corpus: " + ", ".join(f"{k}={v}" for k, v in summary.items()))
    return summary


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m train.corpus", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="synthesise the corpus, splits and trial lists")
    b.add_argument("--out", type=Path, default=Path("data/corpus"))
    b.add_argument("--speakers", type=int, default=None, help="first N working voices (default: all)")
    b.add_argument("--utts", type=int, default=24, help="utterances per speaker")
    b.add_argument("--engines", default=",".join(DEFAULT_ENGINES),
                   help=f"comma-separated, of {', '.join(ENGINES)} (rhvoice is the dev set's held-out engine)")
    b.add_argument("--espeak-voices", type=int, default=0, help="random espeak-ng formant voices to draw")
    b.add_argument("--espeak-utts", type=int, default=None, help="utterances per espeak voice (default --utts)")
    b.add_argument("--split", default="0.7,0.1,0.2", help="train,val,test speaker fractions")
    b.add_argument("--seed", type=int, default=0)
    b.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    engines = tuple(e for e in args.engines.split(",") if e)
    unknown = set(engines) - set(ENGINES)
    if unknown:
        parser.error(f"--engines: unknown {sorted(unknown)}; known: {', '.join(ENGINES)}")
    fractions = dict(zip(SPLIT_FRACTIONS, map(float, args.split.split(","))))
    if len(fractions) != 3 or abs(sum(fractions.values()) - 1) > 1e-6:
        parser.error(f"--split: three fractions summing to 1, got {args.split!r}")
    build(args.out, args.speakers, args.utts, args.seed, args.workers, engines=engines,
          espeak_voices_n=args.espeak_voices, espeak_utts=args.espeak_utts, fractions=fractions)


if __name__ == "__main__":
    main()
