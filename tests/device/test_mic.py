"""The real microphone path: PortAudio through a private ALSA `type file` pcm (exact samples) and
through a private PulseAudio null sink (real-time pacing). Nothing touches the real home or card."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from device.audio import load_audio, save_wav
from device.config import Config
from device.vad import Segmenter
from tests.audio_env import FILE_PCM, PulseNullSink, alsa_file_env
from tests.helpers import REPO, corpus_speakers, enroll_first_two, lines, recognize_offline, run, start_pulse


@pytest.fixture(scope="module")
def store_with_two(tiny_bundle: Path, tiny_corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Config, dict]:
    speakers = corpus_speakers(tiny_corpus)
    cfg = Config(model=str(tiny_bundle), store=str(tmp_path_factory.mktemp("mic") / "store.db"), policy="eer")
    cfg = cfg.override(**{"enroll.consistency": -100.0})
    enroll_first_two(cfg, tiny_bundle, speakers)
    return cfg, speakers


def test_identify_from_mic_through_alsa_file_pcm(store_with_two: tuple[Config, dict], tmp_path: Path) -> None:
    cfg, speakers = store_with_two
    clip = load_audio(speakers[next(iter(speakers))][-1])
    capture = np.concatenate([np.zeros(8000, np.float32), clip, np.zeros(48000, np.float32)])
    pcm = (capture * 32767).astype(np.int16)
    env = alsa_file_env(tmp_path / "home", pcm)
    # The file pcm is unpaced (and yields silence after the file): a big ring buffer keeps every sample.
    (tmp_path / "mic.toml").write_text("[audio]\nqueue_seconds = 600.0\n")
    for _ in range(3):  # a reader starved by a busy machine can still lose blocks: that run proves nothing
        proc = run([sys.executable, "-m", "device", "identify", "--mic", "--device", FILE_PCM, "--json", "--timeout", "20",
                    "--config", tmp_path / "mic.toml", "--model", cfg.model, "--store", cfg.store, "--policy", "eer"],
                   env=env, timeout=60)
        if "ring buffer full" not in proc.stderr:
            break
    heard = json.loads(proc.stdout)
    # The same samples segmented and scored offline must give the same answer: the stream is exact.
    utterance = Segmenter(cfg.vad).feed(pcm)[0]
    direct = recognize_offline(cfg, utterance, "eer")
    assert proc.returncode == (0 if direct.decision.accepted else 1), proc.stderr[-2000:]
    assert heard["decision"] == direct.decision.label
    assert heard["seconds"] == pytest.approx(len(utterance) / 16000, abs=0.01), (heard, direct.to_dict())
    assert heard["speaker"] == direct.decision.speaker
    assert heard["score"] == pytest.approx(direct.decision.score, abs=1e-3)
    assert heard["seconds"] == pytest.approx(len(utterance) / 16000, abs=0.01)


def test_enroll_from_mic_until_enough_speech(store_with_two: tuple[Config, dict], tmp_path: Path) -> None:
    """Live enrollment: four utterances are spoken (paplay, real time); it stops at the target."""
    cfg, speakers = store_with_two
    name = list(speakers)[2]
    gap = np.zeros(16000, np.float32)
    save_wav(tmp_path / "talk.wav", np.concatenate([x for p in speakers[name][:4] for x in (load_audio(p), gap)]))
    (tmp_path / "mic.toml").write_text("[enroll]\ntarget_seconds = 6.0\nconsistency = -100.0\n")
    with PulseNullSink(tmp_path / "pulse") as pa:
        start_pulse(pa)
        enroll = subprocess.Popen([sys.executable, "-m", "device", "enroll", name, "--mic", "--device", "pulse",
                                   "--timeout", "40", "--config", tmp_path / "mic.toml", "--model", cfg.model,
                                   "--store", cfg.store], cwd=REPO, env={**os.environ, **pa.env, "PYTHONPATH": str(REPO)},
                                  text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        errors = lines(enroll.stderr)
        wait_for(errors, "recording from", enroll)
        player = pa.play(tmp_path / "talk.wav")
        stdout, _ = enroll.communicate(timeout=60)
        player.kill()
    assert enroll.returncode == 0, list(errors.queue)
    progress = [line for line in stdout.splitlines() if line.startswith("[")]
    assert progress[-1].startswith("[100%]") and len(progress) in (2, 3), stdout
    assert f"{name}: profile saved, {len(progress)} samples" in stdout


def wait_for(q: queue.Queue, text: str, proc: subprocess.Popen, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not any(text in line for _, line in list(q.queue)):
        assert time.monotonic() < deadline and proc.poll() is None, list(q.queue)
        time.sleep(0.1)


def test_daemon_in_real_time_through_pulseaudio(store_with_two: tuple[Config, dict], tmp_path: Path) -> None:
    cfg, speakers = store_with_two
    pa = PulseNullSink(tmp_path / "pulse")
    start_pulse(pa)
    clips = []
    for i, files in enumerate(list(speakers.values())[:2]):
        clips.append(tmp_path / f"clip{i}.wav")
        save_wav(clips[-1], np.concatenate([load_audio(files[-1]), np.zeros(16000, np.float32)]))
    # Through PulseAudio the samples and the cut differ a little (scores move by ~0.2): the same speaker must win.
    expected = [recognize_offline(cfg, Segmenter(cfg.vad).feed(load_audio(c))[0], "eer").decision for c in clips]
    env = {**os.environ, **pa.env, "PYTHONPATH": str(REPO)}
    daemon = subprocess.Popen([sys.executable, "-m", "device", "run", "--device", "pulse", "--json", "--model", cfg.model,
                               "--store", cfg.store, "--policy", "eer"], cwd=REPO, env=env, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_for(lines(daemon.stderr), "recording from", daemon)
        decisions = lines(daemon.stdout)
        for clip, want in zip(clips, expected):
            started = time.monotonic()
            assert pa.play(clip).wait(30) == 0
            played = time.monotonic() - started
            at, line = decisions.get(timeout=15)
            result = json.loads(line)
            # Real-time pacing: the decision cannot come before the speech was played out.
            assert at - started >= result["seconds"] - 1.0 and played >= 0.8 * sf_seconds(clip)
            assert (result["kind"], result["speaker"]) == ("identify", want.speaker), (result, want)
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(10) == 0
    finally:
        if daemon.poll() is None:
            daemon.kill()
        pa.stop()


def sf_seconds(path: Path) -> float:
    return len(load_audio(path, allow_silent=True)) / 16000
