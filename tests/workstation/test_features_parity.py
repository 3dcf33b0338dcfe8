"""Pins the MFCC definition: device/features.py equals a librosa configuration on corpus speech
(same HTK-bin filterbank, pre-emphasis, uncentred frames, periodic Hann window, natural log,
orthonormal DCT-II, no lifter)."""

from __future__ import annotations

from pathlib import Path

import librosa
import numpy as np
import pytest
import python_speech_features as psf

from device.audio import load_audio
from device.features import FeatureConfig, log_mel_cepstra

DEMO_CLIPS = Path(__file__).resolve().parents[2] / "device" / "demo_clips"


def librosa_mfcc(audio: np.ndarray, cfg: FeatureConfig) -> np.ndarray:
    emphasized = np.append(audio[0], audio[1:] - cfg.preemph * audio[:-1])
    n = cfg.n_frames(len(emphasized))
    padded = np.pad(emphasized, (0, (n - 1) * cfg.frame_step + cfg.frame_length - len(emphasized)))
    # frames start at their first sample and are zero-padded to n_fft at the end (not centred)
    frames = librosa.util.frame(padded, frame_length=cfg.frame_length, hop_length=cfg.frame_step)
    windowed = frames * librosa.filters.get_window(cfg.window, cfg.frame_length, fftbins=True)[:, None]
    spec = np.fft.rfft(windowed, n=cfg.n_fft, axis=0)
    power = np.abs(spec) ** 2 / cfg.n_fft
    fb = psf.get_filterbanks(cfg.n_filters, cfg.n_fft, cfg.sample_rate, cfg.low_freq, cfg.high_freq)
    mel = fb @ power
    mel = np.where(mel == 0, np.finfo(float).eps, mel)  # only exact zeros are floored (a nearly empty last frame is not)
    return librosa.feature.mfcc(S=np.log(mel), n_mfcc=cfg.n_ceps, dct_type=2, norm="ortho", lifter=0).T


def test_matches_librosa_on_corpus_speech(tiny_corpus):
    cfg = FeatureConfig()
    wavs = sorted(tiny_corpus.glob("*/*.wav"))[:6]
    assert wavs
    for wav in wavs:
        assert_matches_librosa(wav, cfg)


@pytest.mark.parametrize("cfg", [
    FeatureConfig(window="hamming", n_ceps=13, n_filters=26),
    FeatureConfig(win_len=0.032, win_step=0.016, n_fft=1024, n_filters=64, n_ceps=40, low_freq=0.0, high_freq=8000.0,
                  preemph=0.0),
    FeatureConfig(win_len=0.02, win_step=0.02, n_fft=512, n_filters=30, n_ceps=30, low_freq=100.0, high_freq=4000.0),
], ids=["hamming-26", "32ms-1024", "no-overlap-4k"])
def test_matches_librosa_for_other_configs(cfg):
    for clip in sorted(DEMO_CLIPS.glob("*-test-1.flac")):
        assert_matches_librosa(clip, cfg)


def assert_matches_librosa(path, cfg: FeatureConfig) -> None:
    audio = load_audio(path)
    ours = log_mel_cepstra(audio, cfg)
    ref = librosa_mfcc(audio.astype(np.float64), cfg)
    assert ours.shape == ref.shape
    rel = np.abs(ours - ref).max() / np.abs(ref).max()
    assert rel < 1e-4, f"{path.name}: relative error {rel:.2e}"
