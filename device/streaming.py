"""The recognizer's work done while the person is still speaking.

The daemon's segmenter (device/vad.py) gives every utterance in progress its own `UtteranceStream`
and pushes it each 30-ms frame as it is accepted (the lead-in first). When the VAD closes the
utterance the recognizer (device/recognizer.py) takes the stream's results instead of computing
them from the whole audio, and they are the same numbers (tests/device/test_streaming.py):

- the cepstra, frame block by frame block (device.features.CepstraStream);
- the window embeddings (device.embedder.EmbeddingStream): with the bundle's norm 'none' each
  sliding window is embedded as soon as its frames exist and the end costs the last, end-aligned
  window. With 'cmn'/'cmvn' (the shipped model) a window's input depends on the whole utterance's
  mean, so all windows are embedded at the end; only the frontend and the VAD labels are saved;
- the VAD labels for speech seconds and SNR (device.vad.LabelStream, a fresh VAD as `frame_labels`).
"""

from __future__ import annotations

import numpy as np

from device.embedder import Embedding, EmbeddingStream, WindowEmbedder
from device.vad import LabelStream


class UtteranceStream:
    """One utterance in progress; `push` its audio in order, then `finish` once."""

    def __init__(self, embedder: WindowEmbedder, aggressiveness: int) -> None:
        self._embedding = EmbeddingStream(embedder)
        self._labels = LabelStream(aggressiveness)
        self._chunks: list[np.ndarray] = []

    def push(self, audio: np.ndarray) -> None:
        self._chunks.append(audio)
        self._embedding.push(audio)
        self._labels.push(audio)

    def matches(self, audio: np.ndarray) -> bool:
        """Whether `audio` is exactly what was pushed (the recognizer's input checks may have
        changed it, e.g. clipped it), i.e. whether `finish` answers for it."""
        return (sum(len(c) for c in self._chunks) == len(audio)
                and np.array_equal(np.concatenate(self._chunks) if self._chunks else audio[:0], audio))

    def finish(self) -> tuple[Embedding, np.ndarray, np.ndarray]:
        """(embedding as `embed_audio`, frames and voiced as `frame_labels`) of everything pushed."""
        frames, voiced = self._labels.labels()
        return self._embedding.finish(), frames, voiced
