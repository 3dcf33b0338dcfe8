"""The command line and the TOML config: commands, JSON output, exit codes and error messages."""

from __future__ import annotations

import json
import shutil
import stat
import sys
from pathlib import Path

import pytest

from device.audio import load_audio
from device.bundle import sha256_file
from device.config import Config, ConfigError
from tests.helpers import corpus_speakers, recognize_offline, run


def cli(*args: object, env: dict[str, str] | None = None):
    return run([sys.executable, "-m", "device", *args], env=env or {}, timeout=120)


def test_config_file_and_overrides(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('policy = "eer"\nclaimed = ["ann"]\n[vad]\naggressiveness = 3\n[audio]\ndevice = 2\n')
    cfg = Config.load(path)
    assert cfg.policy == "eer" and cfg.vad.aggressiveness == 3 and cfg.audio.device == "2" and cfg.claimed == ["ann"]
    over = cfg.override(policy="1.5", **{"vad.padding_ms": 450, "audio.device": None})
    assert over.policy == "1.5" and over.vad.padding_ms == 450 and over.audio.device == "2"


@pytest.mark.parametrize("text, message", [
    ("[vad]\nagressiveness = 3\n", "unknown key(s) vad.agressiveness"),
    ("[vad]\naggressiveness = 7\n", "vad.aggressiveness must be 0..3"),
    ('event_retention = "many"\n', "event_retention must be int"),
    ("policy = \"strict\"\n", "policy must be 'far0.1', 'far0.5', 'far1', 'far2', 'far5', 'eer' or a number"),
    ('[refresh]\npolicy = "loose"\n', "refresh.policy must be 'far0.1', "),
    ("[refresh]\nenabled = 1\n", "refresh.enabled must be bool"),
    ("[refresh]\nmax_recent = 0\n", "refresh.max_recent must be at least 1"),
    ("[refresh]\nmin_similarity = 1.5\n", "refresh.min_similarity must be in (0, 1]"),
    ("claimed = [1]\n", "claimed must be a list of strings"),
    ("model = \n", "not valid TOML"),
])
def test_config_errors_name_file_and_key(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        Config.load(path)
    assert str(err.value).startswith(str(path)) and message in str(err.value)


def test_cli_bad_config_exit_code(tmp_path: Path) -> None:
    (tmp_path / "c.toml").write_text("colour = 1\n")
    proc = cli("profiles", "list", "--config", tmp_path / "c.toml")
    assert proc.returncode == 2 and "c.toml: unknown key(s) colour" in proc.stderr


def test_enroll_verify_identify_profiles(tiny_bundle: Path, tiny_corpus: Path, tmp_path: Path) -> None:
    speakers = corpus_speakers(tiny_corpus)
    ann, bob = list(speakers)[:2]
    common = ["--model", tiny_bundle, "--store", tmp_path / "s" / "store.db", "--policy", "eer"]
    (tmp_path / "c.toml").write_text("[enroll]\nconsistency = -100.0\n")
    for name in (ann, bob):
        proc = cli("enroll", name, "--files", *speakers[name][:5], *common, "--json", "--config", tmp_path / "c.toml")
        assert proc.returncode == 0, proc.stderr[-1500:]
        summary = json.loads(proc.stdout)
        assert summary["samples"] == 5 and summary["progress"] > 0 and len(summary["feedback"]) == 5
    assert stat.S_IMODE((tmp_path / "s" / "store.db").stat().st_mode) == 0o600

    proc = cli("verify", "--claim", ann, "--file", speakers[ann][-1], *common, "--json")
    result = json.loads(proc.stdout)
    assert proc.returncode == (0 if result["accepted"] else 1)
    assert set(result) >= {"decision", "score", "threshold", "margin", "speech_seconds"} and result["claim"] == ann
    proc = cli("identify", "--file", speakers[bob][-1], *common)
    cfg = Config(model=str(tiny_bundle), store=str(tmp_path / "s" / "store.db"))
    want = recognize_offline(cfg, load_audio(speakers[bob][-1]), "eer").decision
    assert proc.returncode == (0 if want.accepted else 1), proc.stderr[-1500:]
    assert "identify" in proc.stdout and f"score {want.score:+.3f}  threshold {want.threshold:+.3f}" in proc.stdout

    proc = cli("verify", "--claim", "nobody", "--file", speakers[ann][-1], *common)
    assert proc.returncode == 2 and "not enrolled: nobody" in proc.stderr

    listed = json.loads(cli("profiles", "list", *common, "--json").stdout)
    assert [r["name"] for r in listed] == sorted([ann, bob])
    export = tmp_path / "profiles.json"
    assert cli("profiles", "export", export, *common).returncode == 0
    assert cli("profiles", "delete", ann, *common).returncode == 0
    assert cli("profiles", "delete", ann, *common).returncode == 2
    proc = cli("profiles", "import", export, *common)
    assert proc.returncode == 0 and f"imported 1 speakers: {ann}" in proc.stdout

    other = tmp_path / "other-model"
    shutil.copytree(tiny_bundle, other)
    meta = json.loads((other / "model.json").read_text())
    (other / "model.tflite").write_bytes((other / "model.tflite").read_bytes() + b"\0")
    meta["sha256"] = sha256_file(other / "model.tflite")
    (other / "model.json").write_text(json.dumps(meta))
    proc = cli("profiles", "import", export, "--model", other, "--store", tmp_path / "s2.db")
    assert proc.returncode == 2 and "cannot be used" in proc.stderr


def test_corrupt_and_mismatched_bundles_refused(tiny_bundle: Path, tiny_corpus: Path, tmp_path: Path) -> None:
    clip = next(iter(corpus_speakers(tiny_corpus).values()))[0]
    corrupt = tmp_path / "corrupt"
    shutil.copytree(tiny_bundle, corrupt)
    data = bytearray((corrupt / "model.tflite").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (corrupt / "model.tflite").write_bytes(bytes(data))
    proc = cli("identify", "--file", clip, "--model", corrupt, "--store", tmp_path / "s.db")
    assert proc.returncode == 2 and "model.tflite: sha256" in proc.stderr and "corrupt" in proc.stderr

    mismatched = tmp_path / "mismatched"
    shutil.copytree(tiny_bundle, mismatched)
    meta = json.loads((mismatched / "model.json").read_text())
    meta["features"]["n_ceps"] = meta["features"]["n_ceps"] + 4
    (mismatched / "model.json").write_text(json.dumps(meta))
    proc = cli("enroll", "x", "--files", clip, "--model", mismatched, "--store", tmp_path / "s.db")
    assert proc.returncode == 2 and "input shape" in proc.stderr and "model.json says" in proc.stderr

    proc = cli("identify", "--file", clip, "--model", tmp_path / "nothing", "--store", tmp_path / "s.db")
    assert proc.returncode == 2 and "not a model bundle (no model.json)" in proc.stderr


def test_missing_audio_file(tiny_bundle: Path, tmp_path: Path) -> None:
    proc = cli("enroll", "x", "--files", tmp_path / "nope.wav", "--model", tiny_bundle, "--store", tmp_path / "s.db")
    assert proc.returncode == 2 and "nope.wav: no such file" in proc.stderr
