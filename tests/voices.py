"""Held-out voices for tests that judge the shipped model: RHVoice speakers rendered on demand.

The shipped model is trained on MBROLA and espeak-ng voices only; every RHVoice voice is held out
of training. The development set's calibration half selects and calibrates the model, so only the
people of its report half may stand in as household members and strangers the model has never
heard. `render` speaks seeded sentences with `RHVoice-test -p <voice>` (as train/corpus.py does):
Latin-script voices read English, Cyrillic ones Russian. Other shared helpers: tests/helpers.py.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np

from tests.helpers import require_tool
from train.sentences import sentence

# voice -> script: the RHVoice people of the development set's report half (seed 0), nobody else;
# tests/workstation/test_devset.py proves it against train.devset.split_halves and train.corpus.
RHVOICE_VOICES = {"alan": "latin", "lyubov": "latin", "hana": "latin", "magda": "latin", "natan": "latin",
                  "anna": "cyrillic", "arina": "cyrillic", "mikhail": "cyrillic", "pavel": "cyrillic",
                  "victoria": "cyrillic", "marianna": "cyrillic", "natalia": "cyrillic", "volodymyr": "cyrillic",
                  "azamat": "cyrillic", "nazgul": "cyrillic", "suze": "cyrillic"}


def render(voice: str, out_dir: Path, n: int, seed: int = 0) -> list[Path]:
    """`n` different sentences (4-6 s each) in `voice`, as 16-bit WAV files (RHVoice's own rate)."""
    rhvoice = require_tool("RHVoice-test")
    script = RHVOICE_VOICES[voice]
    rng = np.random.default_rng([seed, sum(map(ord, voice))])
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        path = out_dir / f"{voice}-{i + 1}.wav"
        text = sentence(rng, script, 2)
        proc = subprocess.run([rhvoice, "-p", voice, "-o", str(path)], input=text, text=True,
                              capture_output=True)
        if proc.returncode != 0 or not path.is_file() or path.stat().st_size < 16000:
            raise RuntimeError(f"RHVoice-test -p {voice} failed: {proc.stderr[-500:]}")
        paths.append(path)
    return paths


def training_speakers(bundle: Path, repo: Path) -> set[str] | None:
    """The speakers the bundle was trained on: model.json's `trained_on.speakers` (bundles list
    them), else its `trained_on.splits`/train.txt when that file is on this machine, else None."""
    meta = json.loads((bundle / "model.json").read_text())
    trained_on = meta.get("trained_on") or {}
    if trained_on.get("speakers"):
        return set(trained_on["speakers"])
    splits = trained_on.get("splits")
    if not splits:
        return None
    train = Path(splits) if Path(splits).is_absolute() else repo / splits
    train = train / "train.txt"
    return set(train.read_text().split()) if train.is_file() else None


def assert_held_out(bundle: Path, repo: Path, voices: list[str]) -> None:
    """Fail if any of `voices` is not a report-half person of the development set (the calibration
    half selects and calibrates the model) or is a training speaker of `bundle` (where the bundle
    says whom it trained on): a test must not judge a model on voices it learned or was chosen on."""
    chosen_on = sorted(set(voices) - set(RHVOICE_VOICES))
    assert not chosen_on, f"{chosen_on} are not report-half people of the development set: pick from RHVOICE_VOICES"
    trained = training_speakers(bundle, repo)
    learned = sorted({f"rh-{v.lower()}" for v in voices} & (trained or set()))
    assert not learned, f"{bundle} was trained on {learned}: pick held-out voices"
