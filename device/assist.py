"""A Wyoming speech-to-text proxy that knows who is speaking (`python -m device assist`).

Home Assistant's Assist pipeline (or a satellite's) sends a voice command to a Wyoming ASR service
as `transcribe`, `audio-start`, `audio-chunk`..., `audio-stop` and waits for a `transcript`. This
proxy sits in front of the real ASR service (`--upstream`, e.g. wyoming-faster-whisper):

1. the command's audio is converted to 16 kHz mono and cut into utterances by the daemon's VAD;
2. the utterances are judged as the daemon judges them: a session per speaker (a new voice starts
   a new session), the decision on each session's fused evidence at the policy in force and the
   bundle's calibration for that much evidence;
3. the command belongs to the accepted session with the most speech. Nobody accepted: an empty
   transcript, so the pipeline does nothing (`[assist] unverified = "forward"` forwards it
   untagged instead). Accepted: utterances of sessions not accepted as that person (the TV, a
   second voice) are cut out unless `keep_others`, and the rest goes upstream;
4. the upstream's transcript comes back, `[name] `-prefixed with `tag`. The decision is stored as
   an event and published (MQTT / webhook) like the daemon's, so automations need no LLM.

`assist-enroll NAME` serves the same protocol but takes each command as an enrolment sample and
answers with the enrolment feedback as the transcript (what the satellite shows or says).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

import numpy as np
from wyoming.asr import Transcribe, Transcript
from wyoming.audio import AudioChunk, AudioChunkConverter, AudioStart, AudioStop
from wyoming.client import AsyncClient
from wyoming.error import Error
from wyoming.event import Event
from wyoming.info import AsrProgram, Attribution, Describe, Info
from wyoming.server import AsyncEventHandler, AsyncServer

from device.config import Config
from device.enroll import Enroller, SampleFeedback
from device.publish import Publisher
from device.recognizer import RecognitionError, Recognizer, Result
from device.store import Store
from device.vad import SAMPLE_RATE, Segmenter, Utterance, to_float

log = logging.getLogger("device.assist")
WIDTH = 2  # bytes per sample of the audio the proxy keeps and forwards (16-bit mono, 16 kHz)
CHUNK_SAMPLES = 1024  # per forwarded audio-chunk, as Home Assistant sends them
ATTRIBUTION = Attribution(name="speakerid", url="")


@dataclass
class Verdict:
    """What the proxy decided about one command."""

    result: Result | None  # the session the command is attributed to (None: no speech to judge)
    cut: list[tuple[int, int]] = field(default_factory=list)  # sample ranges of other speakers' speech

    @property
    def accepted(self) -> bool:
        return self.result is not None and self.result.decision.accepted


def judge(recognizer: Recognizer, cfg: Config, audio: np.ndarray) -> Verdict:
    """The command's utterances judged as the daemon judges a conversation (see the module docstring)."""
    segmenter = Segmenter(cfg.vad)
    utterances = segmenter.feed_utterances(audio) + segmenter.flush_utterances()
    sessions = recognizer.session_tracker(gap_s=None)
    judged: dict[str, tuple[Result, list[Utterance]]] = {}
    for i, utterance in enumerate(utterances):
        try:
            result = recognizer.recognize(utterance.audio, label=f"command utterance {i + 1}", sessions=sessions)
        except RecognitionError as exc:  # too little speech in it: it neither helps nor is cut
            log.info("%s", exc)
            continue
        judged[result.session] = (result, judged.get(result.session, (result, []))[1] + [utterance])
    if not judged:
        return Verdict(None)
    accepted = [entry for entry in judged.values() if entry[0].decision.accepted]
    result, _ = max(accepted or judged.values(), key=lambda entry: entry[0].speech_seconds)
    if not result.decision.accepted or cfg.assist.keep_others:
        return Verdict(result)
    speaker = result.decision.speaker  # the same person back after another voice is a new session, not cut
    cut = [(u.start, u.start + len(u.audio)) for r, us in judged.values()
           if not (r.decision.accepted and r.decision.speaker == speaker) for u in us]
    return Verdict(result, sorted(cut))


def without(pcm: bytes, cut: list[tuple[int, int]]) -> bytes:
    """16-bit audio with the given sample ranges removed."""
    keep, at = [], 0
    for start, end in cut:
        keep.append(pcm[at * WIDTH:start * WIDTH])
        at = max(at, end)
    keep.append(pcm[at * WIDTH:])
    return b"".join(keep)


class Upstream:
    """The real ASR service: one connection per command, as Home Assistant itself does."""

    def __init__(self, uri: str, timeout_s: float) -> None:
        self.uri, self.timeout_s = uri, timeout_s

    def _client(self) -> AsyncClient:
        return AsyncClient.from_uri(self.uri, connect_timeout=self.timeout_s, read_timeout=self.timeout_s)

    async def info(self) -> Info:
        async with self._client() as client:
            await client.write_event(Describe().event())
            while (event := await client.read_event()) is not None:
                if Info.is_type(event.type):
                    return Info.from_event(event)
        raise ConnectionError("closed without describing itself")

    async def transcribe(self, request: Transcribe, pcm: bytes) -> Event:
        """The upstream's transcript (or error) event for 16-bit 16 kHz mono `pcm`."""
        async with self._client() as client:
            await client.write_event(request.event())
            await client.write_event(AudioStart(rate=SAMPLE_RATE, width=WIDTH, channels=1).event())
            step = CHUNK_SAMPLES * WIDTH
            for i in range(0, len(pcm), step):
                await client.write_event(AudioChunk(rate=SAMPLE_RATE, width=WIDTH, channels=1,
                                                    audio=pcm[i:i + step]).event())
            await client.write_event(AudioStop().event())
            while (event := await client.read_event()) is not None:
                if Transcript.is_type(event.type) or Error.is_type(event.type):
                    return event
        raise ConnectionError("closed without a transcript")


class Command:
    """The audio of one command as it arrives, converted to 16 kHz mono 16-bit."""

    def __init__(self) -> None:
        self.request = Transcribe()
        self.pcm = bytearray()
        self.converter = AudioChunkConverter(rate=SAMPLE_RATE, width=WIDTH, channels=1)

    def add(self, chunk: AudioChunk) -> None:
        self.pcm += self.converter.convert(chunk).audio

    def audio(self) -> np.ndarray:
        return to_float(np.frombuffer(bytes(self.pcm), dtype="<i2"))


class CommandHandler(AsyncEventHandler):
    """One Wyoming connection: collects each command and hands it to `answer` at audio-stop."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 describe: Callable[[], object], answer: Callable[[Command], object]) -> None:
        super().__init__(reader, writer)
        self.describe, self.answer = describe, answer
        self.command = Command()

    async def handle_event(self, event: Event) -> bool:
        if Describe.is_type(event.type):
            await self.write_event((await self.describe()).event())
        elif Transcribe.is_type(event.type):
            self.command.request = Transcribe.from_event(event)
        elif AudioStart.is_type(event.type):
            request, self.command = self.command.request, Command()
            self.command.request = request
        elif AudioChunk.is_type(event.type):
            self.command.add(AudioChunk.from_event(event))
        elif AudioStop.is_type(event.type):
            command, self.command = self.command, Command()
            await self.write_event(await self.answer(command))
        return True


class AssistProxy:
    """`python -m device assist`: verify, cut, forward, tag (the module docstring)."""

    def __init__(self, cfg: Config, store: Store, recognizer: Recognizer, publisher: Publisher,
                 emit: Callable[[Result], None] = lambda result: None) -> None:
        self.cfg, self.settings = cfg, cfg.assist
        self.store, self.recognizer, self.publisher, self.emit = store, recognizer, publisher, emit
        self.upstream = Upstream(self.settings.upstream, self.settings.timeout_s)

    async def describe(self) -> Info:
        """The upstream's ASR programs, named as passing through this proxy; our own stub if it is down."""
        try:
            info = await self.upstream.info()
        except (TimeoutError, OSError, ConnectionError) as exc:
            log.warning("describe: upstream %s unreachable: %s", self.settings.upstream, exc)
            return Info(asr=[AsrProgram(name="speakerid", attribution=ATTRIBUTION, installed=True,
                                        description=f"speaker-verifying proxy; upstream {self.settings.upstream} "
                                                    "unreachable", version=None, models=[])])
        for program in info.asr:
            program.name = f"speakerid + {program.name}"
            program.description = f"speaker-verified: {program.description or program.name}"
        return Info(asr=info.asr)

    async def answer(self, command: Command) -> Event:
        verdict = judge(self.recognizer, self.cfg, command.audio())
        if verdict.result is not None:
            self.record(verdict.result)
        if not verdict.accepted and self.settings.unverified == "empty":
            return Transcript(text="").event()
        try:
            reply = await self.upstream.transcribe(command.request, without(bytes(command.pcm), verdict.cut))
        except (TimeoutError, OSError, ConnectionError) as exc:
            log.error("upstream %s: %s", self.settings.upstream, exc)
            return Error(text=f"speakerid: upstream ASR {self.settings.upstream} unavailable: {exc}",
                         code="upstream-unavailable").event()
        if verdict.accepted and self.settings.tag and Transcript.is_type(reply.type):
            transcript = Transcript.from_event(reply)
            transcript.text = f"[{verdict.result.decision.speaker}] {transcript.text}"
            return transcript.event()
        return reply

    def record(self, result: Result) -> None:
        """Stored as an event and published, as the daemon does with its decisions."""
        self.store.add_event(result.event())
        self.publisher.decision(result.to_dict())
        self.emit(result)


class AssistEnroller:
    """`python -m device assist-enroll NAME`: each command is an enrolment sample; the transcript
    is the feedback. Saves the profile and stops the server after `samples` usable ones."""

    def __init__(self, enroller: Enroller, store: Store, samples: int, done: asyncio.Event,
                 emit: Callable[[SampleFeedback, float], None]) -> None:
        self.enroller, self.store, self.samples, self.done, self.emit = enroller, store, samples, done, emit

    async def describe(self) -> Info:
        return Info(asr=[AsrProgram(name="speakerid-enroll", attribution=ATTRIBUTION, installed=True,
                                    description=f"enrolling {self.enroller.name}", version=None, models=[])])

    async def answer(self, command: Command) -> Event:
        feedback = self.enroller.add(command.audio(), f"command {len(self.enroller.samples) + 1}")
        self.emit(feedback, self.enroller.progress)
        usable = len(self.enroller.new)
        if usable >= self.samples:
            self.enroller.save(self.store)
            self.done.set()
        return Transcript(text=f"{feedback.message} ({usable} of {self.samples})").event()


async def serve(uri: str, describe: Callable[[], object], answer: Callable[[Command], object],
                stop: asyncio.Event) -> None:
    """Serve Wyoming clients on `uri` until `stop` is set."""
    server = AsyncServer.from_uri(uri)
    await server.start(partial(CommandHandler, describe=describe, answer=answer))
    log.info("listening on %s", uri)
    try:
        await stop.wait()
    finally:
        await server.stop()
