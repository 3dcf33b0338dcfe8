"""Voice activity: webrtcvad on 30 ms frames, turned into whole utterances.

`Segmenter` is the streaming half (blocks in, finished utterances out) with the padding/hangover
scheme of the webrtcvad reference collector: speech starts when most of the last `padding_ms` is
voiced (and keeps that lead-in), and ends when nearly all of it is unvoiced again (keeping that
hangover). Given a `sink` factory it also hands each utterance to its own sink frame by frame
while it is spoken (device/streaming.py does the recognizer's work there). `frame_labels` /
`speech_seconds` / `snr_db` are the offline half used to judge a finished sample; `LabelStream`
is `frame_labels` fed frame by frame.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import webrtcvad

from device.config import VadConfig

SAMPLE_RATE = 16000
FRAME_MS = 30
FRAME = SAMPLE_RATE * FRAME_MS // 1000
START_RATIO = 0.6  # voiced share of the padding window that starts an utterance
END_RATIO = 0.9  # unvoiced share of the padding window that ends it
MAX_SNR_DB = 60.0
MIN_NOISE_FRAMES = 10  # 0.3 s of pauses  # digital silence would otherwise give an infinite SNR


def to_float(block: np.ndarray) -> np.ndarray:
    """int16 or float samples -> float32 in [-1, 1]."""
    block = np.asarray(block).reshape(-1)
    if block.dtype == np.int16:
        return block.astype(np.float32) / 32768.0
    return block.astype(np.float32, copy=False)


def _pcm16(frame: np.ndarray) -> bytes:
    return (np.clip(np.nan_to_num(frame), -1.0, 1.0) * 32767.0).astype("<i2").tobytes()


class FrameSink(Protocol):
    def push(self, audio: np.ndarray) -> None: ...


@dataclass
class Utterance:
    audio: np.ndarray  # float32, whole 30-ms frames
    sink: FrameSink | None = None  # made when the speech started; was pushed exactly `audio`, frame by frame
    start: int = 0  # its first sample's place in everything this Segmenter was fed


class Segmenter:
    """Feed audio blocks of any size; get back finished utterances (float32 arrays, or `Utterance`s
    with their sinks from `feed_utterances` / `flush_utterances`)."""

    def __init__(self, cfg: VadConfig, sink: Callable[[], FrameSink] | None = None) -> None:
        self.cfg = cfg
        self._new_sink = sink
        self._vad = webrtcvad.Vad(cfg.aggressiveness)
        self._pad_frames = max(1, cfg.padding_ms // FRAME_MS)
        self._min_frames = int(np.ceil(cfg.min_utterance_s * 1000 / FRAME_MS))
        self._max_frames = int(cfg.max_utterance_s * 1000 // FRAME_MS)
        self._pending = np.zeros(0, np.float32)
        self._fed = 0  # frames fed so far
        self._reset()

    def _reset(self) -> None:
        self._ring: deque[tuple[np.ndarray, bool]] = deque(maxlen=self._pad_frames)
        self._speech: list[np.ndarray] = []
        self._sink: FrameSink | None = None
        self._triggered = False

    @property
    def in_speech(self) -> bool:
        return self._triggered

    def feed(self, block: np.ndarray) -> list[np.ndarray]:
        return [u.audio for u in self.feed_utterances(block)]

    def flush(self) -> list[np.ndarray]:
        """End of stream: whatever speech is open becomes an utterance (if long enough)."""
        return [u.audio for u in self.flush_utterances()]

    def feed_utterances(self, block: np.ndarray) -> list[Utterance]:
        audio = np.concatenate([self._pending, to_float(block)])
        n = len(audio) // FRAME
        self._pending = audio[n * FRAME:]
        done = []
        for i in range(n):
            utterance = self._frame(audio[i * FRAME:(i + 1) * FRAME])
            if utterance is not None:
                done.append(utterance)
        return done

    def flush_utterances(self) -> list[Utterance]:
        frames, sink = (self._speech, self._sink) if self._triggered else ([], None)
        self._reset()
        self._pending = np.zeros(0, np.float32)
        return self._emit(frames, sink)

    def _frame(self, frame: np.ndarray) -> Utterance | None:
        self._fed += 1
        voiced = self._vad.is_speech(_pcm16(frame), SAMPLE_RATE)
        self._ring.append((frame, voiced))
        if not self._triggered:
            if sum(v for _, v in self._ring) > START_RATIO * self._ring.maxlen:
                self._triggered = True
                self._speech = [f for f, _ in self._ring]
                self._ring.clear()
                if self._new_sink is not None:
                    self._sink = self._new_sink()
                    for f in self._speech:
                        self._sink.push(f)
            return None
        self._speech.append(frame)
        if self._sink is not None:
            self._sink.push(frame)
        unvoiced = sum(not v for _, v in self._ring)
        if unvoiced > END_RATIO * self._ring.maxlen or len(self._speech) >= self._max_frames:
            frames, sink = self._speech, self._sink
            self._reset()
            out = self._emit(frames, sink)
            return out[0] if out else None
        return None

    def _emit(self, frames: list[np.ndarray], sink: FrameSink | None) -> list[Utterance]:
        if len(frames) < self._min_frames:
            return []
        return [Utterance(np.concatenate(frames), sink, (self._fed - len(frames)) * FRAME)]


class LabelStream:
    """`frame_labels` of audio that arrives in pieces: one fresh VAD fed the same 30-ms frames."""

    def __init__(self, aggressiveness: int) -> None:
        self._vad = webrtcvad.Vad(aggressiveness)
        self._pending = np.zeros(0, np.float32)
        self._frames: list[np.ndarray] = []
        self._voiced: list[bool] = []

    def push(self, audio: np.ndarray) -> None:
        audio = np.concatenate([self._pending, to_float(audio)])
        n = len(audio) // FRAME
        for frame in audio[: n * FRAME].reshape(n, FRAME):
            self._frames.append(frame)
            self._voiced.append(self._vad.is_speech(_pcm16(frame), SAMPLE_RATE))
        self._pending = audio[n * FRAME:]

    def labels(self) -> tuple[np.ndarray, np.ndarray]:
        """(frames (n, FRAME) float32, voiced (n,) bool) for the whole frames pushed so far."""
        frames = np.stack(self._frames) if self._frames else np.zeros((0, FRAME), np.float32)
        return frames, np.array(self._voiced, dtype=bool)


def frame_labels(audio: np.ndarray, aggressiveness: int) -> tuple[np.ndarray, np.ndarray]:
    """(frames (n, FRAME) float32, voiced (n,) bool) for whole 30 ms frames of `audio`."""
    stream = LabelStream(aggressiveness)
    stream.push(audio)
    return stream.labels()


def speech_seconds(voiced: np.ndarray) -> float:
    return float(np.count_nonzero(voiced)) * FRAME_MS / 1000


def snr_db(frames: np.ndarray, voiced: np.ndarray) -> float | None:
    """Speech-to-noise power ratio: voiced frames against the median unvoiced frame (or, when the
    sample has under MIN_NOISE_FRAMES of pauses, against its quietest 5% of frames). The median
    keeps a few loud fricatives the VAD called unvoiced from passing for noise. None when nothing
    is voiced."""
    if not voiced.any():
        return None
    power = np.mean(frames.astype(np.float64) ** 2, axis=1)
    speech = float(power[voiced].mean())
    quiet = power[~voiced]
    noise = float(np.median(quiet)) if len(quiet) >= MIN_NOISE_FRAMES else float(np.percentile(power, 5))
    if noise <= 0:
        return MAX_SNR_DB
    return float(min(MAX_SNR_DB, 10 * np.log10(max(speech, 1e-12) / noise)))
