"""Enrollment: turn a person's speech samples into a profile, with feedback on every sample.

Used by `python -m device enroll` and by the status page through one loop, `enroll_samples`:
build an `Enroller` (it loads the speaker's existing samples unless replacing), `add()` audio
arrays one at a time and show each `SampleFeedback` (`feedback_line` words it the same everywhere),
then `save()` writes the profile and all its samples in one store transaction.

A sample is refused (and says why) when it has too little speech, no voice at all, clipping, too
much noise, or when it does not sound like the samples already taken: the last check catches a
second person stepping up to the microphone halfway through.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np
import soundfile as sf

from device.audio import TARGET_SR, to_mono_16k
from device.config import Config
from device.embedder import Embedder
from device.names import check_name
from device.policies import CONSISTENCY_POLICY
from device.scoring import Scorer, unit
from device.store import Sample, Speaker, Store
from device.vad import frame_labels, snr_db, speech_seconds

CLIP_LEVEL = 0.99  # |sample| at or above this counts as clipped


class EnrollError(ValueError):
    """Enrollment cannot proceed (e.g. the speaker exists with another model)."""


@dataclass
class SampleFeedback:
    label: str
    seconds: float
    speech_seconds: float
    snr_db: float | None
    score: float | None  # against the running profile; None for the first sample
    problems: list[str] = field(default_factory=list)  # human-readable reasons the sample was refused

    @property
    def accepted(self) -> bool:
        return not self.problems

    @property
    def message(self) -> str:
        return "ok" if self.accepted else "; ".join(self.problems)


class Enroller:
    """Collects accepted samples for one speaker and computes the resulting profile."""

    def __init__(self, embedder: Embedder, cfg: Config, name: str, existing: list[Sample] | None = None,
                 replace: bool = False) -> None:
        check_name(name)  # refuse a bad name before anyone is asked to speak
        self.embedder, self.cfg, self.name = embedder, cfg, name
        bundle = embedder.bundle
        self.scorer = Scorer.for_bundle(bundle)
        self.consistency = (cfg.enroll.consistency if cfg.enroll.consistency is not None
                            else bundle.threshold(CONSISTENCY_POLICY))
        self.old: list[Sample] = list(existing or [])
        self.new: list[Sample] = []
        self.replace = replace  # the stored samples are dropped on save

    @classmethod
    def for_store(cls, store: Store, embedder: Embedder, cfg: Config, name: str, replace: bool = False) -> Enroller:
        """Continue the speaker's enrollment (or start over with `replace`)."""
        current = store.get_speaker(name)
        sha = embedder.bundle.meta["sha256"]
        if current is not None and current.model_sha != sha and not replace:
            raise EnrollError(f"{name} was enrolled with model {current.model!r}, this device runs "
                              f"{embedder.bundle.name!r}; use --replace to enroll again from scratch")
        return cls(embedder, cfg, name, [] if replace or current is None else store.samples(name), replace)

    @property
    def samples(self) -> list[Sample]:
        return self.old + self.new

    @property
    def speech_seconds(self) -> float:
        return sum(s.speech_seconds for s in self.samples)

    @property
    def progress(self) -> float:
        """0..1 toward the configured amount of net speech."""
        return min(1.0, self.speech_seconds / self.cfg.enroll.target_seconds)

    def add(self, audio: np.ndarray, label: str = "sample", keep_audio: bool = False) -> SampleFeedback:
        """Judge one recording; keep it in the profile only when nothing is wrong with it."""
        audio = to_mono_16k(audio, TARGET_SR, label, allow_silent=True)
        ec = self.cfg.enroll
        frames, voiced = frame_labels(audio, self.cfg.vad.aggressiveness)
        fb = SampleFeedback(label, len(audio) / TARGET_SR, speech_seconds(voiced), snr_db(frames, voiced), None)
        if fb.speech_seconds == 0:
            fb.problems.append("no voice found")
            return fb
        if fb.speech_seconds < ec.min_speech_s:
            fb.problems.append(f"too short: {fb.speech_seconds:.1f} s of speech, need {ec.min_speech_s:.1f} s")
        clipped = float(np.mean(np.abs(audio) >= CLIP_LEVEL))
        if clipped > ec.clip_fraction:
            fb.problems.append(f"clipped: {clipped:.1%} of samples at full scale; move back or lower the gain")
        if fb.snr_db is not None and fb.snr_db < ec.min_snr_db:
            fb.problems.append(f"too noisy: SNR {fb.snr_db:.0f} dB, need {ec.min_snr_db:.0f} dB")
        vector = self.embedder.embed(audio)
        if self.samples:
            fb.score = self.scorer.score(self.mean(), vector)
            if fb.score < self.consistency:
                fb.problems.append(f"inconsistent with the samples so far (score {fb.score:.2f} < {self.consistency:.2f}): "
                                   "a different speaker?")
        if fb.accepted:
            self.new.append(Sample(vector, fb.seconds, fb.speech_seconds, fb.snr_db, [], _wav(audio) if keep_audio else None,
                                   time.time()))
        return fb

    def mean(self) -> np.ndarray:
        return unit(np.mean([s.embedding for s in self.samples], axis=0))

    def speaker(self) -> Speaker:
        """The profile the current samples make: unit mean embedding, counts, quality."""
        if not self.samples:
            raise EnrollError(f"{self.name}: no usable samples; nothing to save")
        mean = self.mean()
        quality = float(np.clip(np.mean([float(np.dot(unit(s.embedding), mean)) for s in self.samples]), 0, 1))
        bundle = self.embedder.bundle
        return Speaker(self.name, bundle.name, bundle.meta["sha256"], mean, len(self.samples), self.speech_seconds, quality)

    def save(self, store: Store) -> Speaker:
        """Write the profile and the new samples in one transaction."""
        speaker = self.speaker()
        store.save_speaker(speaker, self.new, replace=self.replace)
        self.old, self.new, self.replace = self.samples, [], False
        return speaker


@dataclass
class Enrollment:
    """What one enrollment session did: the saved profile and every sample's feedback."""

    speaker: Speaker
    feedback: list[SampleFeedback]
    progress: float  # 0..1 toward enroll.target_seconds, after this session

    def to_dict(self) -> dict:
        s = self.speaker
        return {"name": s.name, "samples": s.n_samples, "speech_seconds": round(s.speech_seconds, 2),
                "progress": round(self.progress, 3), "quality": round(s.quality, 3), "model": s.model,
                "feedback": [{"label": f.label, "accepted": f.accepted, "message": f.message,
                              "speech_seconds": round(f.speech_seconds, 2), "snr_db": f.snr_db, "score": f.score}
                             for f in self.feedback]}

    def summary(self) -> str:
        s = self.speaker
        return (f"{s.name}: profile saved, {s.n_samples} samples, {s.speech_seconds:.1f} s of speech "
                f"({self.progress:.0%}), quality {s.quality:.2f}")


def feedback_line(fb: SampleFeedback, progress: float) -> str:
    """'[ 42%] a1.wav: ok (3.1 s speech, SNR 31 dB)' or '... refused: <reasons> (...)'."""
    snr = "" if fb.snr_db is None else f", SNR {fb.snr_db:.0f} dB"
    verdict = "ok" if fb.accepted else f"refused: {fb.message}"
    return f"[{progress:4.0%}] {fb.label}: {verdict} ({fb.speech_seconds:.1f} s speech{snr})"


def enroll_samples(enroller: Enroller, store: Store, samples: Iterable[tuple[str, np.ndarray]],
                   report: Callable[[SampleFeedback, float], None] = lambda fb, progress: None,
                   keep_audio: bool = False, until_complete: bool = False) -> Enrollment:
    """The enrollment loop of the CLI and the status page: judge each (label, audio) sample, report
    its feedback with the progress so far, stop early once complete if asked (a live microphone),
    then save; EnrollError if no sample was usable (nothing is written then)."""
    feedback = []
    for label, audio in samples:
        fb = enroller.add(audio, label, keep_audio=keep_audio)
        feedback.append(fb)
        report(fb, enroller.progress)
        if until_complete and enroller.progress >= 1.0:
            break
    if not enroller.new:
        raise EnrollError(f"{enroller.name}: no usable sample, nothing saved")
    return Enrollment(enroller.save(store), feedback, enroller.progress)


def _wav(audio: np.ndarray) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, audio, TARGET_SR, format="WAV", subtype="PCM_16")
    return buf.getvalue()
