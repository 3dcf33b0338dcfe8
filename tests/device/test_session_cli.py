"""`verify|identify --session` and the "unsure" answer through the real CLI, with the shipped model
and never-heard people of the development set's report half (RHVoice natalia, pavel and hana
enrolled, anna a stranger).

Measured with models/default (calibrated per number of utterances on the dev set's calibration
half): hana's 1.5-s test clips score 0.66-0.82 alone against a 3-person far1 threshold of 0.804
(6 of 8 fall short), and the three of them closest to a name, each unsure, score 0.840 together against the
3-utterance threshold of 0.826. (pavel's, used before, are now named alone at 1.5 s too.)
Regenerate these expectations when models/default changes.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from device.audio import load_audio, save_wav
from tests.helpers import run
from tests.voices import render

HOUSEHOLD = ("natalia", "pavel", "hana")


def cli(*args: object):
    return run([sys.executable, "-m", "device", *args], timeout=180)


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    root = tmp_path_factory.mktemp("home")
    store = root / "store.db"
    for name in HOUSEHOLD:
        proc = cli("enroll", name, "--files", *render(name, root / name, 4, seed=0), "--store", store, "--json")
        assert proc.returncode == 0, proc.stderr[-1500:]
    clips = []
    for i, path in enumerate(render("hana", root / "hana-test", 8, seed=1)):
        clip = root / f"hana-1.5s-{i}.wav"
        save_wav(clip, load_audio(path)[:24000])  # a second and a half: often too little alone
        clips.append(clip)
    return {"store": store, "hana": clips, "natalia": render("natalia", root / "natalia-test", 2, seed=1),
            "anna": render("anna", root / "anna-test", 1, seed=1)}


def answers(proc) -> list[dict]:
    return [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]


def test_three_recordings_that_each_fall_short_are_accepted_together(home: dict) -> None:
    alone = answers(cli("identify", "--file", *home["hana"], "--store", home["store"], "--json"))
    short = [Path(a["file"]) for a in sorted(alone, key=lambda a: a["score"]) if not a["accepted"]][-3:]
    assert len(short) == 3, alone  # measured: 6 of the 8 fall short alone; the three closest to a name
    assert all(a["decision"] in ("unsure", "reject") for a in alone if not a["accepted"])
    proc = cli("identify", "--session", "--file", *short, "--store", home["store"], "--json")
    together = json.loads(proc.stdout)
    assert proc.returncode == 0, proc.stderr[-1500:]
    assert (together["decision"], together["speaker"], together["utterances"]) == ("accept", "hana", 3)
    assert together["split_at"] == [] and together["files"] == [str(p) for p in short]
    assert together["threshold"] > max(a["threshold"] for a in alone)  # 3 utterances: their own, stricter table


def test_a_session_is_split_where_another_person_takes_over(home: dict) -> None:
    files = [home["hana"][0], *home["natalia"]]
    proc = cli("identify", "--session", "--file", *files, "--store", home["store"], "--json")
    got = json.loads(proc.stdout)
    assert got["split_at"] == [str(home["natalia"][0])]
    assert (got["speaker"], got["utterances"]) == ("natalia", 2)  # decided on natalia's two alone
    assert proc.returncode == (0 if got["accepted"] else 1)


def test_unsure_is_its_own_answer_with_exit_code_1(home: dict) -> None:
    """anna (never enrolled) sounds like natalia: measured 0.742 against the accept threshold 0.804."""
    proc = cli("identify", "--file", home["anna"][0], "--store", home["store"], "--json")
    got = json.loads(proc.stdout)
    assert proc.returncode == 1
    assert (got["decision"], got["accepted"]) == ("unsure", False)
    assert got["unsure_below"] <= got["score"] < got["threshold"] and got["utterances"] == 1
    proc = cli("verify", "--claim", "hana", "--file", home["anna"][0], "--store", home["store"])
    assert proc.returncode == 1 and "UNSURE" in proc.stdout



def test_a_stranger_who_speaks_right_after_someone_enrolled_does_not_share_their_session(tmp_path: Path) -> None:
    """The demo's household (alan, lyubov, mikhail) and its stranger victoria, who speaks right after
    lyubov. Their recordings pass the same-speaker cosine, and fused they reach 0.862 against the
    2-utterance threshold 0.822 (measured): without `[session] join_far` victoria is accepted as
    lyubov. Alone she is a reject against lyubov, so she starts a session of her own. (A stranger
    who alone is "unsure" against the person before still joins: measured in docs/GENERALISATION.md.)"""
    store, clips = tmp_path / "store.db", Path("device/demo_clips")
    for name in ("alan", "lyubov", "mikhail"):
        assert cli("enroll", name, "--files", *sorted(clips.glob(f"{name}-enroll-*.flac")), "--store", store).returncode == 0
    files = [clips / "lyubov-test-2.flac", clips / "victoria-test-1.flac"]
    proc = cli("identify", "--session", "--file", *files, "--store", store, "--json")
    got = json.loads(proc.stdout)
    assert (got["split_at"], got["utterances"]) == ([str(files[1])], 1)
    assert (proc.returncode, got["decision"]) == (1, "reject")
    off = tmp_path / "join-off.toml"
    off.write_text("[session]\njoin_far = 0.0\n")
    riding = json.loads(cli("identify", "--session", "--file", *files, "--store", store, "--config", off, "--json").stdout)
    assert (riding["decision"], riding["speaker"], riding["utterances"]) == ("accept", "lyubov", 2)
