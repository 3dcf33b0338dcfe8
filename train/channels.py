"""What a Pi's microphone meets, for 16 kHz float32 mono audio: rooms with early reflections
(pyroomacoustics image-source rooms), household noise at a chosen SNR, telephone and streaming
codecs (sox: GSM 06.10, AMR-NB 4.75 kbit/s, G.711 mu-law at 8 kHz, low-bitrate Ogg Vorbis) and
cheap-microphone frequency responses.

Used by the development set (`train.devset`) for its noisy and channel conditions and by training
augmentation (`train.augment.Augmenter`). Every random choice comes from the caller's generator.
"""

from __future__ import annotations

import functools
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pyroomacoustics as pra
import soundfile as sf
from scipy.signal import butter, fftconvolve, sosfilt

from train.augment import SR, clip_safe, mix_at_snr, pink_noise

CODECS = ("gsm", "amr-nb", "mulaw", "vorbis")
CHANNELS = (*CODECS, "mic")
HOUSEHOLD = ("babble", "tv", "appliance", "clatter")


def room_impulse_response(rng: np.random.Generator, sr: int = SR) -> np.ndarray:
    """A shoebox room 3-8 x 3-6 x 2.4-3 m, RT60 0.15-0.7 s, talker and microphone at random places
    at least 0.5 m from the walls: direct path and early reflections by the image-source method."""
    dims = np.array([rng.uniform(3, 8), rng.uniform(3, 6), rng.uniform(2.4, 3.0)])
    rt60 = float(rng.uniform(0.15, 0.7))
    absorption, max_order = pra.inverse_sabine(rt60, dims)
    room = pra.ShoeBox(dims, fs=sr, materials=pra.Material(absorption), max_order=min(max_order, 12))
    room.add_source(rng.uniform(0.5, dims - 0.5))
    room.add_microphone(rng.uniform(0.5, dims - 0.5))
    room.compute_rir()
    rir = np.asarray(room.rir[0][0], dtype=np.float64)
    return rir / (np.sqrt(np.sum(rir**2)) + 1e-12)


@functools.cache
def room_pool(size: int = 64, seed: int = 0) -> tuple[np.ndarray, ...]:
    """`size` seeded rooms, computed once per process: training draws from these instead of
    simulating a room for every copy (the image-source method costs ~40 ms a room)."""
    rng = np.random.default_rng([seed, 51])
    return tuple(room_impulse_response(rng) for _ in range(size))


def room(audio: np.ndarray, rng: np.random.Generator, pooled: bool = False) -> np.ndarray:
    """Speech as heard across a random room (`room_impulse_response`, or one of `room_pool`),
    same length and RMS."""
    x = np.asarray(audio, dtype=np.float64)
    pool = room_pool() if pooled else None
    rir = pool[int(rng.integers(len(pool)))] if pool else room_impulse_response(rng)
    wet = fftconvolve(x, rir)[: x.size]
    scale = np.sqrt(np.mean(x**2) / (np.mean(wet**2) + 1e-12))
    return np.asarray(wet * scale, dtype=np.float32)


def household_noise(n: int, rng: np.random.Generator, voices: list[np.ndarray], kind: str | None = None) -> np.ndarray:
    """`n` samples of one household sound: babble (3-6 other talkers), tv (one talker over pink noise),
    appliance (brown noise with mains hum harmonics), clatter (decaying knocks over pink noise)."""
    return household_noise_heard(n, rng, voices, kind)[0]


def household_noise_heard(n: int, rng: np.random.Generator, voices: list[np.ndarray],
                          kind: str | None = None) -> tuple[np.ndarray, list[int]]:
    """`household_noise` (the same draws) and the indices of the `voices` it holds: the development
    set records whose voices went into a test file's background."""
    kind = kind or str(rng.choice(HOUSEHOLD))
    if kind in ("babble", "tv") and not voices:
        raise ValueError(f"{kind} noise needs other-talker clips")
    t = np.arange(n) / SR
    if kind == "babble":
        picks = [int(i) for i in rng.choice(len(voices), size=min(len(voices), int(rng.integers(3, 7))), replace=False)]
        return sum(_looped(voices[i], n, rng) for i in picks), picks
    if kind == "tv":
        pick = int(rng.integers(len(voices)))
        return _looped(voices[pick], n, rng) + 0.3 * pink_noise(n, rng), [pick]
    if kind == "appliance":
        brown = np.cumsum(rng.standard_normal(n))
        brown = brown - np.convolve(brown, np.ones(801) / 801, mode="same")
        mains = float(rng.choice([50.0, 60.0]))
        hum = sum(np.sin(2 * np.pi * mains * k * t + rng.uniform(0, 2 * np.pi)) / k for k in range(1, 6))
        return brown / (np.std(brown) + 1e-12) + 0.5 * hum, []
    if kind == "clatter":
        out = 0.2 * pink_noise(n, rng)
        for start in rng.integers(0, n, size=int(rng.integers(3, 12))):
            length = min(n - start, int(rng.uniform(0.03, 0.2) * SR))
            decay = np.exp(-np.arange(length) / (rng.uniform(0.005, 0.04) * SR))
            out[start: start + length] += rng.uniform(1, 4) * rng.standard_normal(length) * decay
        return out, []
    raise ValueError(f"household noise kind must be one of {HOUSEHOLD}, got {kind!r}")


def _looped(clip: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    clip = np.asarray(clip, dtype=np.float64)
    looped = np.resize(np.roll(clip, -int(rng.integers(0, max(clip.size, 1)))), n)
    return looped / (np.std(looped) + 1e-12)


def noisy_room(audio: np.ndarray, rng: np.random.Generator, voices: list[np.ndarray],
               snr_range: tuple[float, float] = (0.0, 15.0)) -> np.ndarray:
    """The development set's noisy condition: a random room, then household noise at 0-15 dB SNR."""
    return noisy_room_heard(audio, rng, voices, snr_range)[0]


def noisy_room_heard(audio: np.ndarray, rng: np.random.Generator, voices: list[np.ndarray],
                     snr_range: tuple[float, float] = (0.0, 15.0)) -> tuple[np.ndarray, list[int]]:
    """`noisy_room` and the indices of the `voices` heard in its background (`household_noise_heard`)."""
    wet = room(audio, rng)
    noise, heard = household_noise_heard(wet.size, rng, voices)
    return clip_safe(mix_at_snr(wet, noise, float(rng.uniform(*snr_range)))), heard


def codec(audio: np.ndarray, kind: str) -> np.ndarray:
    """Round trip through a codec with sox, back to 16 kHz float32 of the same length."""
    encode = {"gsm": ["-r", "8000", "-t", "gsm"], "amr-nb": ["-r", "8000", "-C", "0", "-t", "amr-nb"],
              "mulaw": ["-r", "8000", "-e", "mu-law", "-b", "8", "-t", "wav"], "vorbis": ["-C", "-1", "-t", "ogg"]}
    if kind not in encode:
        raise ValueError(f"codec must be one of {CODECS}, got {kind!r}")
    x = np.asarray(audio, dtype=np.float32)
    with tempfile.TemporaryDirectory() as tmp:
        src, coded, back = Path(tmp) / "in.wav", Path(tmp) / "coded", Path(tmp) / "out.wav"
        sf.write(src, x, SR, subtype="PCM_16")
        for cmd in (["sox", "-R", str(src), "-c", "1", *encode[kind], str(coded)],
                    ["sox", "-R", "-t", encode[kind][encode[kind].index("-t") + 1], str(coded), "-r", str(SR), "-b", "16",
                     str(back)]):
            done = subprocess.run(cmd, capture_output=True, text=True)
            if done.returncode:
                raise RuntimeError(f"sox {kind}: {done.stderr.strip()}")
        y, _ = sf.read(back, dtype="float32")
    y = y[: x.size]
    return np.pad(y, (0, x.size - y.size)).astype(np.float32)


def cheap_mic(audio: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A small MEMS/electret capsule: weak lows (high-pass 150-400 Hz), a presence peak of 3-9 dB
    at 2-5 kHz, roll-off above 5-7.5 kHz."""
    x = np.asarray(audio, dtype=np.float64)
    y = sosfilt(butter(2, float(rng.uniform(150, 400)), btype="highpass", fs=SR, output="sos"), x)
    centre = float(rng.uniform(2000, 5000))
    band = sosfilt(butter(2, [centre / 1.3, min(centre * 1.3, 7900)], btype="bandpass", fs=SR, output="sos"), y)
    y = y + (10 ** (rng.uniform(3, 9) / 20) - 1) * band
    y = sosfilt(butter(4, float(rng.uniform(5000, 7500)), btype="lowpass", fs=SR, output="sos"), y)
    return clip_safe(y * np.sqrt(np.mean(x**2) / (np.mean(y**2) + 1e-12)))


def channel(audio: np.ndarray, kind: str, rng: np.random.Generator) -> np.ndarray:
    """One of CHANNELS: a codec round trip, or a cheap microphone."""
    return cheap_mic(audio, rng) if kind == "mic" else codec(audio, kind)
