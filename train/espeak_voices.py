"""Many distinct speakers from one engine: espeak-ng formant voices with seeded random voice parameters.

A formant synthesiser has no recorded person behind it, so each drawn parameter set (pitch base
and range, a vocal-tract length factor shared by all formants plus per-formant jitter, formant
heights and widths, breathiness, roughness, flutter, voicing and consonant strength, spectral
tone) is its own voice. Because every one of them comes from the same engine, the engine cannot
stand in for the person when they are trained together (see shared research: engine
fingerprints).

espeak-ng looks variants up in `<data>/voices/!v/`, so `prepare_data` makes private copies of the
system data folder (symlinks only) with the drawn variants added, used with `espeak-ng --path`.
espeak-ng lists at most 349 voices per data folder (languages included), so each copy holds
`PER_FOLDER` variants and none of the system's own.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np

# Languages whose letter-to-sound rules read the corpus's Latin (English-word) or Cyrillic sentences.
LATIN_LANGUAGES = ("en-us", "en-gb", "de", "fr-fr", "es", "it", "pt", "nl", "pl", "cs", "sv", "da", "nb", "fi",
                   "hu", "ro", "hr", "sk", "sl", "tr", "id", "ca", "eo", "et", "lv", "lt", "af", "sw", "cy", "ga")
CYRILLIC_LANGUAGES = ("ru", "uk", "bg", "mk", "sr", "ky", "tt")
PER_FOLDER = 100
DRAWN_PREFIX = "es-"  # the corpus names a drawn voice es-svNNNN; training tells them apart by it


@dataclass(frozen=True)
class EspeakVoice:
    name: str  # variant file name, e.g. "sv0042"
    language: str
    gender: str
    variant: str  # the variant file's text

    @property
    def script(self) -> str:
        return "cyrillic" if self.language in CYRILLIC_LANGUAGES else "latin"


def draw_voice(index: int, seed: int) -> EspeakVoice:
    """The `index`-th random voice of `seed`: the same pair always gives the same voice."""
    rng = np.random.default_rng([seed, 9, index])
    female = bool(rng.random() < 0.5)
    base = rng.uniform(150, 250) if female else rng.uniform(70, 140)
    vtl = rng.uniform(0.9, 1.2) if female else rng.uniform(0.8, 1.08)  # all formants move together
    lines = ["language variant", f"name sv{index:04d}", f"gender {'female' if female else 'male'}", "",
             f"pitch {base:.0f} {base + rng.uniform(30, 120):.0f}"]
    for f in range(9):
        freq = 100 * vtl * rng.uniform(0.94, 1.06) if 1 <= f <= 5 else 100
        height = rng.uniform(70, 130) if f <= 5 else 100
        width = rng.uniform(80, 130) if f <= 5 else 100
        lines.append(f"formant {f} {freq:.0f} {height:.0f} {width:.0f}")
    breath = rng.integers(0, 40, size=8) if rng.random() < 0.4 else np.zeros(8, dtype=int)
    lines += ["breath " + " ".join(map(str, breath)), f"flutter {rng.integers(0, 30)}",
              f"roughness {rng.integers(0, 6)}", f"voicing {rng.integers(70, 130)}",
              f"consonants {rng.integers(70, 130)} {rng.integers(70, 130)}",
              f"tone {rng.integers(200, 900)} {rng.integers(150, 350)} {rng.integers(1200, 2400)} "
              f"{rng.integers(150, 350)}"]
    cyrillic = rng.random() < 0.15
    pool = CYRILLIC_LANGUAGES if cyrillic else LATIN_LANGUAGES
    language = pool[int(rng.integers(len(pool)))]
    return EspeakVoice(f"sv{index:04d}", language, "female" if female else "male", "\n".join(lines) + "\n")


def system_data() -> Path:
    """The installed espeak-ng data folder, as espeak-ng itself reports it."""
    out = subprocess.run(["espeak-ng", "--version"], capture_output=True, text=True, check=True).stdout
    return Path(out.split("Data at:")[1].strip())


def prepare_data(root: Path, voices: list[EspeakVoice]) -> dict[str, Path]:
    """Data folders under `root` holding the variants of `voices`; returns {variant name: the folder
    `espeak-ng --path` takes for it}."""
    paths = {}
    for start in range(0, len(voices), PER_FOLDER):
        folder = root / f"{start // PER_FOLDER:03d}"
        data = folder / "espeak-ng-data"
        if data.exists():
            shutil.rmtree(data)
        shutil.copytree(system_data(), data, symlinks=True, copy_function=_link,
                        ignore=lambda d, names: names if Path(d).name == "!v" else [])
        variants = data / "voices" / "!v"
        variants.mkdir(parents=True, exist_ok=True)
        for v in voices[start: start + PER_FOLDER]:
            (variants / v.name).write_text(v.variant, encoding="utf-8")
            paths[v.name] = folder.resolve()
    return paths


def _link(src: str, dst: str) -> None:
    Path(dst).symlink_to(Path(src).resolve())
