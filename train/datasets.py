"""Speaker-labelled audio on disk: utterance listing, split files and trial lists.

Three layouts are recognised, and in all of them the speaker is the top-level folder:
folder-per-speaker (`spk/*.wav|flac`), LibriSpeech (`spk/chapter/*.flac`) and VoxCeleb
(`id/video/*.wav`). A LibriSpeech root as distributed, with its subset folders
(`train-clean-100/spk/chapter/*.flac`, `dev-other/...`), is read through them: the speakers are
the subsets' folders. Folders starting with `_` or `.` and `splits` (the synthetic corpus's
derived audio and split lists) are skipped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from train.espeak_voices import DRAWN_PREFIX

AUDIO_SUFFIXES = (".wav", ".flac")
SKIPPED_DIRS = frozenset({"splits"})
LIBRISPEECH_SUBSET = re.compile(r"(train|dev|test)-(clean|other)(-\d+)?")


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


def detect_layout(root: str | Path) -> str:
    """'folder', 'librispeech' or 'voxceleb', judged from the first speaker folder holding audio."""
    for spk_dir in _speaker_dirs(Path(root)):
        files = _speaker_files(spk_dir)
        if not files:
            continue
        if files[0].parent == spk_dir:
            return "folder"
        return "librispeech" if files[0].suffix.lower() == ".flac" else "voxceleb"
    raise DatasetError(f"{root}: no speaker folders with .wav/.flac files (expected spk/*.wav, "
                       "spk/chapter/*.flac or id/video/*.wav)")


def list_utterances(root: str | Path) -> list[Utterance]:
    """Every audio file under `root` labelled with its top-level folder, sorted by speaker then path."""
    root = Path(root)
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
