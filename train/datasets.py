"""Speaker-labelled audio on disk: utterance listing, split files and trial lists.

Five layouts are recognised (`detect_layout`'s names):
- `folder`: folder-per-speaker, `spk/*.wav|flac|m4a`;
- `librispeech`: `spk/chapter/*.flac`; a LibriSpeech root as distributed, with its subset folders
  (`train-clean-100/spk/chapter/*.flac`, `dev-other/...`), is read through them: the speakers are
  the subsets' folders;
- `voxceleb`: VoxCeleb1 as shipped, `id/video/*.wav`;
- `voxceleb-m4a`: VoxCeleb2 as shipped (or VoxCeleb1 re-encoded), `id/video/*.m4a` (AAC);
- `commonvoice`: a Common Voice language folder, `validated.tsv` (columns `client_id`, `path`, ...)
  beside `clips/*.mp3`; the speaker is `client_id`, the utterance `clips/<path>`.
In the first four the speaker is the top-level folder. Folders starting with `_` or `.` and `splits`
(the synthetic corpus's derived audio and split lists) are skipped. `.m4a` and `.mp3` are decoded
by `train.corpus_audio.load_audio` (PyAV); the device never reads them.

A corpus without split lists gets a seeded speaker split (`write_seeded_split`), written into the
training run's folder, never into the corpus.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np

from train.espeak_voices import DRAWN_PREFIX

NESTED_LAYOUTS = {".flac": "librispeech", ".wav": "voxceleb", ".m4a": "voxceleb-m4a"}  # spk/sub/*.SUFFIX
AUDIO_SUFFIXES = tuple(NESTED_LAYOUTS)
SKIPPED_DIRS = frozenset({"splits"})
LIBRISPEECH_SUBSET = re.compile(r"(train|dev|test)-(clean|other)(-\d+)?")
COMMONVOICE_TSV, COMMONVOICE_CLIPS = "validated.tsv", "clips"
VAL_SHARE, MIN_VAL_SPEAKERS = 0.05, 2  # validation EER needs two people at least


class DatasetError(ValueError):
    """A malformed dataset file or folder; the message names the file (and line)."""


@dataclass(frozen=True, order=True)
class Utterance:
    speaker: str
    path: Path


class Trial(NamedTuple):
    label: int
    enroll: str
    test: str


def _is_audio(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in AUDIO_SUFFIXES


def _speaker_dirs(root: Path) -> list[Path]:
    if not root.is_dir():
        raise DatasetError(f"{root}: not a directory")
    dirs = sorted(d for d in root.iterdir()
                  if d.is_dir() and not d.name.startswith(("_", ".")) and d.name not in SKIPPED_DIRS)
    return sorted((s for d in dirs for s in (_speaker_dirs(d) if LIBRISPEECH_SUBSET.fullmatch(d.name) else [d])),
                  key=lambda d: (d.name, str(d)))


def _speaker_files(spk_dir: Path) -> list[Path]:
    """Audio directly in the speaker folder and one level below (chapter or video folders)."""
    files = [p for p in spk_dir.iterdir() if _is_audio(p)]
    for sub in spk_dir.iterdir():
        if sub.is_dir() and not sub.name.startswith((".", "_")):
            files += [p for p in sub.iterdir() if _is_audio(p)]
    return sorted(files)


def _is_commonvoice(root: Path) -> bool:
    return (root / COMMONVOICE_TSV).is_file() and (root / COMMONVOICE_CLIPS).is_dir()


def detect_layout(root: str | Path) -> str:
    """'folder', 'librispeech', 'voxceleb', 'voxceleb-m4a' or 'commonvoice'; the speaker-folder layouts
    are judged from the first speaker folder holding audio."""
    root = Path(root)
    if _is_commonvoice(root):
        return "commonvoice"
    for spk_dir in _speaker_dirs(root):
        files = _speaker_files(spk_dir)
        if not files:
            continue
        if files[0].parent == spk_dir:
            return "folder"
        return NESTED_LAYOUTS[files[0].suffix.lower()]
    raise DatasetError(f"{root}: no speaker folders with audio; the layouts read are folder (spk/*.wav|flac|m4a), "
                       "librispeech (spk/chapter/*.flac, also under subset folders like train-clean-100/), "
                       "voxceleb (id/video/*.wav), voxceleb-m4a (id/video/*.m4a) and commonvoice "
                       "(validated.tsv beside clips/*.mp3)")


def _commonvoice_utterances(root: Path) -> list[Utterance]:
    """`validated.tsv`'s rows: speaker `client_id`, audio `clips/<path>`. Sentences hold quotes, so
    the fields are split on tabs only."""
    tsv = root / COMMONVOICE_TSV
    with open(tsv, encoding="utf-8", newline="") as f:
        rows = csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        missing = {"client_id", "path"} - set(rows.fieldnames or ())
        if missing:
            raise DatasetError(f"{tsv}:1: no column {', '.join(sorted(missing))} in the header")
        utts = []
        for n, row in enumerate(rows, 2):
            if not row["client_id"] or not row["path"]:
                raise DatasetError(f"{tsv}:{n}: empty client_id or path")
            utts.append(Utterance(row["client_id"], root / COMMONVOICE_CLIPS / row["path"]))
    return sorted(utts)


def list_utterances(root: str | Path) -> list[Utterance]:
    """Every utterance under `root` labelled with its speaker, sorted by speaker then path."""
    root = Path(root)
    if _is_commonvoice(root):
        return _commonvoice_utterances(root)
    utts = [Utterance(d.name, p) for d in _speaker_dirs(root) for p in _speaker_files(d)]
    if not utts:
        detect_layout(root)  # raises the explanatory error
    return utts


def _lines(path: str | Path) -> list[tuple[int, str]]:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{path}: cannot read ({exc})") from None
    return [(i, line.strip()) for i, line in enumerate(text.splitlines(), 1)
            if line.strip() and not line.lstrip().startswith("#")]


def read_split(path: str | Path) -> list[str]:
    """Speaker ids, one a line (blank lines and # comments ignored); duplicates are an error."""
    seen: dict[str, int] = {}
    for n, line in _lines(path):
        if len(line.split()) != 1:
            raise DatasetError(f"{path}:{n}: expected one speaker id, got {line!r}")
        if line in seen:
            raise DatasetError(f"{path}:{n}: speaker {line!r} already listed on line {seen[line]}")
        seen[line] = n
    return list(seen)


def read_trials(path: str | Path) -> list[Trial]:
    """VoxCeleb-style trials `label enroll test`, label 1 = same speaker, 0 = different."""
    trials = []
    for n, line in _lines(path):
        fields = line.split()
        if len(fields) != 3:
            raise DatasetError(f"{path}:{n}: expected 'label enroll_path test_path', got {len(fields)} fields")
        if fields[0] not in ("0", "1"):
            raise DatasetError(f"{path}:{n}: label must be 0 or 1, got {fields[0]!r}")
        trials.append(Trial(int(fields[0]), fields[1], fields[2]))
    return trials


def speaker_utterances(data: str | Path, splits: str | Path, split: str) -> dict[str, list[Path]]:
    """{speaker: sorted utterance paths} for the speakers listed in SPLITS/<split>.txt."""
    wanted = set(read_split(Path(splits) / f"{split}.txt"))
    by_spk: dict[str, list[Path]] = {}
    for u in list_utterances(data):
        if u.speaker in wanted:
            by_spk.setdefault(u.speaker, []).append(Path(u.path))
    return {s: sorted(p) for s, p in sorted(by_spk.items())}


def training_classes(by_speaker: dict[str, list[Path]], speeds: tuple[float, ...], drawn_speeds: tuple[float, ...],
                     heldout: int) -> list[tuple[str, float, list[Path], list[Path]]]:
    """The training classes, in order: (speaker, speed, utterances trained on, held-out utterances).
    Every warp in `speeds` of a recorded voice is a class of its own; drawn voices (DRAWN_PREFIX) are
    new people already and get `drawn_speeds` only."""
    return [(spk, spd, paths[: len(paths) - heldout], paths[len(paths) - heldout:])
            for spk, paths in by_speaker.items()
            for spd in (drawn_speeds if spk.startswith(DRAWN_PREFIX) else speeds)]


def seeded_split(speakers: list[str], seed: int) -> tuple[list[str], list[str]]:
    """(train, val) speakers, each sorted: VAL_SHARE of them drawn for validation with `seed`, at least
    MIN_VAL_SPEAKERS, and at least one left to train on."""
    speakers = sorted(set(speakers))
    if len(speakers) < MIN_VAL_SPEAKERS + 1:
        raise DatasetError(f"{len(speakers)} speakers: a split needs {MIN_VAL_SPEAKERS + 1} at least")
    n_val = max(MIN_VAL_SPEAKERS, round(VAL_SHARE * len(speakers)))
    order = np.random.default_rng(seed).permutation(len(speakers))
    val = {speakers[i] for i in order[:n_val]}
    return [s for s in speakers if s not in val], sorted(val)


def write_seeded_split(data: str | Path, out: str | Path, seed: int) -> tuple[list[str], list[str]]:
    """`seeded_split` of DATA's speakers written as OUT/train.txt and OUT/val.txt; returns (train, val)."""
    train, val = seeded_split([u.speaker for u in list_utterances(data)], seed)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for name, speakers in (("train", train), ("val", val)):
        header = f"# {name} speakers of {data}: seeded split (seed {seed}, {len(train)} train / {len(val)} val)\n"
        (out / f"{name}.txt").write_text(header + "".join(f"{s}\n" for s in speakers), encoding="utf-8")
    return train, val
