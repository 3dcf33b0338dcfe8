"""`python -m device identify` names the right person among six enrolled voices the shipped model
never trained on (RHVoice voices, tests/voices.py), through the real CLI, TFLite runtime and store."""

from __future__ import annotations

import json

import pytest

from device.config import DEFAULT_MODEL
from tests.helpers import DEVICE_PY, REPO, run
from tests.voices import assert_held_out, render

ENROLLED = ["alan", "lyubov", "natan", "magda", "mikhail", "anna"]  # 3 women, 3 men; English, Polish, Russian
ENROLL_UTTS, TEST_UTTS = 4, 2


@pytest.fixture(scope="module")
def household(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Six voices enrolled from four recordings each with the shipped model; two more of each held out."""
    root = tmp_path_factory.mktemp("identify")
    model = REPO / DEFAULT_MODEL
    assert_held_out(model, REPO, ENROLLED)
    common = ["--model", model, "--store", root / "store.db", "--json"]
    held_out = {}
    for voice in ENROLLED:
        files = render(voice, root / voice, ENROLL_UTTS + TEST_UTTS, seed=13)
        proc = run([DEVICE_PY, "-m", "device", "enroll", voice, "--files", *files[:ENROLL_UTTS], *common], timeout=120)
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert json.loads(proc.stdout)["samples"] >= ENROLL_UTTS - 1  # at most one sample refused
        held_out[voice] = files[ENROLL_UTTS:]
    return {"common": common, "held_out": held_out}


def test_identify_names_the_right_person(household: dict) -> None:
    answers = []
    for voice, files in household["held_out"].items():
        for path in files:
            proc = run([DEVICE_PY, "-m", "device", "identify", "--file", path, *household["common"]], timeout=120)
            assert proc.returncode in (0, 1), proc.stderr[-2000:]
            answer = json.loads(proc.stdout)
            assert {"decision", "accepted", "speaker", "score", "threshold"} <= set(answer)
            assert proc.returncode == (0 if answer["accepted"] else 1)
            answers.append((voice, answer))
    named = [(voice, a["speaker"]) for voice, a in answers]
    assert all(voice == speaker for voice, speaker in named), named  # the closest profile is always the speaker
    accepted = [a["accepted"] and a["speaker"] == voice for voice, a in answers]
    assert sum(accepted) >= len(accepted) - 1, answers  # and at most one genuine attempt is turned away
