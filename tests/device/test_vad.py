"""VAD segmentation and sample-quality measures on real (synthesized) speech."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from device.audio import load_audio
from device.config import VadConfig
from device.vad import FRAME, Segmenter, frame_labels, snr_db, speech_seconds

CLIPS = Path(__file__).resolve().parents[2] / "device" / "demo_clips"


def speech(name: str = "alan-enroll-1") -> np.ndarray:
    return load_audio(CLIPS / f"{name}.flac")


def silence(seconds: float) -> np.ndarray:
    return np.zeros(int(seconds * 16000), np.float32)


def segment(audio: np.ndarray, cfg: VadConfig, block: int = 700) -> list[np.ndarray]:
    seg = Segmenter(cfg)
    out = []
    for start in range(0, len(audio), block):  # odd block size: frames straddle blocks
        out += seg.feed(audio[start:start + block])
    return out + seg.flush()


def test_three_utterances_separated_by_silence() -> None:
    clips = [speech("alan-enroll-1"), speech("mikhail-test-1"), speech("lyubov-test-2")]
    stream = np.concatenate([silence(1.0)] + [x for c in clips for x in (c, silence(1.5))])
    utts = segment(stream, VadConfig())
    assert len(utts) == 3
    for utt, clip in zip(utts, clips):
        assert abs(len(utt) - len(clip)) < 0.8 * 16000  # speech plus padding/hangover
        assert len(utt) % FRAME == 0


def test_int16_blocks_are_accepted() -> None:
    stream = np.concatenate([silence(0.5), speech(), silence(1.0)])
    utts = segment((stream * 32767).astype(np.int16), VadConfig())
    assert len(utts) == 1


def test_min_and_max_length() -> None:
    clip = speech()
    assert segment(np.concatenate([clip, silence(1)]), VadConfig(min_utterance_s=10, max_utterance_s=20)) == []
    cut = segment(np.concatenate([clip, silence(1)]), VadConfig(max_utterance_s=1.5))
    assert len(cut) >= 2 and all(len(u) <= 1.5 * 16000 for u in cut)


def test_silence_and_noise_only() -> None:
    assert segment(silence(3), VadConfig()) == []
    frames, voiced = frame_labels(silence(1), 2)
    assert speech_seconds(voiced) == 0 and snr_db(frames, voiced) is None


def test_snr_drops_with_noise() -> None:
    clip = np.concatenate([silence(0.5), speech(), silence(0.5)])
    rng = np.random.default_rng(0)
    clean = snr_db(*frame_labels(clip, 2))
    noisy_audio = clip + rng.normal(0, 0.05, len(clip)).astype(np.float32)
    noisy = snr_db(*frame_labels(noisy_audio, 2))
    assert clean is not None and noisy is not None
    assert clean > 30 and noisy < clean - 15
    frames, voiced = frame_labels(clip, 2)
    assert 1.5 < speech_seconds(voiced) < len(clip) / 16000
