"""Speaker embeddings from a model bundle with the TFLite interpreter.

audio -> `device.features.mfcc` -> windows of the bundle's fixed length (sliding with the bundle's
hop for long audio, repeated to fill the window for short audio) -> TFLite -> mean of the window
embeddings -> unit vector. `EmbeddingStream` is the same computation for audio that arrives in
pieces (the daemon's utterance in progress), with the same result.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from device.audio import load_audio
from device.bundle import Bundle, BundleError
from device.features import CepstraStream, FeatureConfig, mfcc, normalize
from device.runtime import Runtime, find_runtime, satisfies
from device.scoring import unit


@dataclass
class Embedding:
    vector: np.ndarray  # unit length, float32
    features: np.ndarray  # the (frames, n_ceps) MFCC matrix it came from
    n_windows: int
    padded: bool  # the audio was shorter than one window and was repeated to fill it
    seconds: float


def window_starts(n_frames: int, window: int, hop: int) -> list[int]:
    """Start frames of the sliding windows; the last window ends at the last frame."""
    if n_frames <= window:
        return [0]
    starts = list(range(0, n_frames - window + 1, hop))
    if starts[-1] != n_frames - window:
        starts.append(n_frames - window)
    return starts


def fit_window(feats: np.ndarray, window: int) -> np.ndarray:
    """Repeat a short feature matrix along time until it fills one window."""
    reps = int(np.ceil(window / feats.shape[0]))
    return np.tile(feats, (reps, 1))[:window]


class WindowEmbedder:
    """audio -> MFCC -> fixed windows -> mean of unit window embeddings. Subclasses say how a
    stack of windows becomes embeddings (TFLite here, Keras on the workstation)."""

    def __init__(self, features: FeatureConfig, window_frames: int, hop_frames: int, embedding_dim: int) -> None:
        self.features, self.window_frames, self.hop_frames = features, window_frames, hop_frames
        self.embedding_dim = embedding_dim

    def embed_windows(self, windows: np.ndarray) -> np.ndarray:
        """(n, window_frames, n_ceps) -> (n, embedding_dim) raw model outputs."""
        raise NotImplementedError

    @property
    def window_seconds(self) -> float:
        return self.window_frames * self.features.win_step

    def embed_features(self, feats: np.ndarray, known: dict[int, np.ndarray] | None = None) -> tuple[np.ndarray, int, bool]:
        """Unit embedding of a feature matrix: (vector, windows used, padded?). `known` holds model
        outputs of windows already embedded (by start frame), which are not run again."""
        w = self.window_frames
        padded = feats.shape[0] < w
        if padded:
            feats, known = fit_window(feats, w), None
        starts = window_starts(feats.shape[0], w, self.hop_frames)
        known = known or {}
        todo = [s for s in starts if s not in known]
        if todo:
            known = {**known, **dict(zip(todo, self.embed_windows(np.stack([feats[s:s + w] for s in todo]))))}
        out = np.stack([known[s] for s in starts])
        return unit(unit(out).sum(axis=0)), len(starts), padded

    def embed_audio(self, audio: np.ndarray) -> Embedding:
        feats = mfcc(audio, self.features)
        vector, n, padded = self.embed_features(feats)
        return Embedding(vector, feats, n, padded, len(audio) / self.features.sample_rate)

    def embed(self, audio: np.ndarray) -> np.ndarray:
        """Unit-length embedding of 16 kHz float audio."""
        return self.embed_audio(audio).vector

    def embed_files(self, paths: Iterable[str | Path]) -> tuple[np.ndarray, list[Embedding]]:
        """Batch path for evaluation: (N, D) matrix plus per-file details."""
        details = [self.embed_audio(load_audio(p)) for p in paths]
        matrix = np.stack([d.vector for d in details]) if details else np.zeros((0, self.embedding_dim), np.float32)
        return matrix, details


class EmbeddingStream:
    """`WindowEmbedder.embed_audio` while the audio arrives: `push` pieces, then `finish`.

    The cepstra are computed as their frames complete (`CepstraStream`). With the config's norm
    'none' each sliding window is embedded as soon as its frames exist, so `finish` runs only the
    window aligned to the end. With 'cmn'/'cmvn' every window depends on the whole utterance's
    mean, so all windows wait for `finish`. Either way the result is the whole-utterance one.
    """

    def __init__(self, embedder: WindowEmbedder) -> None:
        self.embedder = embedder
        self.n_samples = 0
        self._cepstra = CepstraStream(embedder.features)
        self._parts: list[np.ndarray] = []  # raw cepstra so far
        self._frames = 0
        self._early = embedder.features.norm == "none"  # per-frame normalisation: windows need not wait
        self._known: dict[int, np.ndarray] = {}  # start frame -> model output of windows embedded early

    def push(self, audio: np.ndarray) -> None:
        self.n_samples += len(audio)
        new = self._cepstra.push(audio)
        if len(new):
            self._parts.append(new)
            self._frames += len(new)
        if self._early:
            self._embed_ready()

    def _embed_ready(self) -> None:
        w, hop = self.embedder.window_frames, self.embedder.hop_frames
        start = len(self._known) * hop
        if start + w > self._frames:
            return
        self._parts = [np.concatenate(self._parts)]
        feats = self._parts[0]
        while start + w <= self._frames:
            window = normalize(feats[start:start + w], self.embedder.features)
            self._known[start] = self.embedder.embed_windows(window[None])[0]
            start += hop

    def finish(self) -> Embedding:
        """The embedding of everything pushed (as `embed_audio` of it); the stream is spent."""
        self._parts.append(self._cepstra.finish())
        feats = normalize(np.concatenate(self._parts), self.embedder.features)
        vector, n, padded = self.embedder.embed_features(feats, self._known)
        return Embedding(vector, feats, n, padded, self.n_samples / self.embedder.features.sample_rate)


class Embedder(WindowEmbedder):
    """The device embedder: a bundle's TFLite model in the first runtime that imports."""

    def __init__(self, bundle: Bundle | str | Path, threads: int = 1, runtime: str | None = None) -> None:
        self.bundle = bundle if isinstance(bundle, Bundle) else Bundle.load(bundle)
        b = self.bundle
        super().__init__(b.features, b.window_frames, b.hop_frames, b.embedding_dim)
        self.runtime: Runtime = find_runtime(runtime)
        self._check_runtime_version()
        self.interpreter = self.runtime.interpreter_class(model_path=str(b.tflite_path), num_threads=threads)
        self.interpreter.allocate_tensors()
        self.input_details = self.interpreter.get_input_details()[0]
        self.output_details = self.interpreter.get_output_details()[0]
        expected = (1, b.window_frames, b.features.n_ceps)
        if tuple(self.input_details["shape"]) != expected:
            raise BundleError(f"{b.tflite_path}: input shape {tuple(self.input_details['shape'])}, model.json says {expected}")
        if int(self.output_details["shape"][-1]) != b.embedding_dim:
            raise BundleError(f"{b.tflite_path}: output size {self.output_details['shape'][-1]}, "
                              f"model.json says {b.embedding_dim}")

    def _check_runtime_version(self) -> None:
        needed = self.bundle.meta.get("min_runtime", {}).get(self.runtime.name)
        if needed and not satisfies(self.runtime.version, needed):
            raise BundleError(f"{self.bundle.path}: needs {self.runtime.name} >= {needed}, "
                              f"this device has {self.runtime.version}")

    def embed_windows(self, windows: np.ndarray) -> np.ndarray:
        return np.stack([self.embed_window(w) for w in windows])

    def embed_window(self, window: np.ndarray) -> np.ndarray:
        """Model output for one (window_frames, n_ceps) matrix; quantised I/O per the model."""
        x = window[None].astype(np.float32)
        if self.input_details["dtype"] != np.float32:
            scale, zero = self.input_details["quantization"]
            info = np.iinfo(self.input_details["dtype"])
            x = np.clip(np.round(x / scale + zero), info.min, info.max).astype(self.input_details["dtype"])
        # The fused LSTM keeps its state in variable tensors across invokes; every window starts fresh,
        # as in Keras. Without this a window's embedding depends on the previous call.
        self.interpreter.reset_all_variables()
        self.interpreter.set_tensor(self.input_details["index"], x)
        self.interpreter.invoke()
        y = self.interpreter.get_tensor(self.output_details["index"])[0]
        if self.output_details["dtype"] != np.float32:
            scale, zero = self.output_details["quantization"]
            y = (y.astype(np.float32) - zero) * scale
        return y.astype(np.float32)
