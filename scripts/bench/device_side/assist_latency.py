"""The delay the Assist proxy adds (device/assist.py): from the client's `audio-stop` to the
`audio-stop` the upstream ASR receives, for a 4-s command of an enrolled voice, everything on
loopback in one process (client, proxy, upstream), one thread. Runs in .venv-device:

    python -m scripts.bench.device_side.assist_latency --model models/default --commands 50 --out x.json

`UpstreamASR` is also the tests' upstream: a Wyoming ASR server built on the same library that
answers every command with a fixed transcript and keeps what it received.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from wyoming.asr import Transcribe, Transcript
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.client import AsyncClient
from wyoming.event import Event
from wyoming.info import AsrModel, AsrProgram, Attribution, Describe, Info
from wyoming.server import AsyncEventHandler, AsyncServer

from device.assist import AssistProxy, serve
from device.audio import load_audio
from device.config import Config
from device.embedder import Embedder
from device.enroll import Enroller, enroll_samples
from device.publish import Publisher
from device.recognizer import Recognizer
from device.store import Store

REPO = Path(__file__).resolve().parents[3]
CLIPS = REPO / "device" / "demo_clips"
TRANSCRIPT = "turn on the kitchen light"
COMMAND_SECONDS = 4.0


@dataclass
class Received:
    """One command as the upstream got it."""

    request: Transcribe | None = None
    pcm: bytearray = field(default_factory=bytearray)
    stopped_at: float | None = None  # time.perf_counter() at its audio-stop


class UpstreamASR:
    """A Wyoming ASR server that answers every command with `TRANSCRIPT` and keeps what it received."""

    def __init__(self) -> None:
        self.commands: list[Received] = []

    def handler(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> AsyncEventHandler:
        upstream = self

        class Handler(AsyncEventHandler):
            async def handle_event(self, event: Event) -> bool:
                if Describe.is_type(event.type):
                    model = AsrModel(name="fixed", attribution=Attribution(name="test", url=""), installed=True,
                                     description="fixed transcript", version="1", languages=["en"])
                    await self.write_event(Info(asr=[AsrProgram(name="fixed-asr", attribution=model.attribution,
                                                                installed=True, description="fixed transcript",
                                                                version="1", models=[model])]).event())
                elif Transcribe.is_type(event.type):
                    upstream.commands.append(Received(Transcribe.from_event(event)))
                elif AudioChunk.is_type(event.type):
                    upstream.commands[-1].pcm += AudioChunk.from_event(event).audio
                elif AudioStop.is_type(event.type):
                    upstream.commands[-1].stopped_at = time.perf_counter()
                    await self.write_event(Transcript(text=TRANSCRIPT, language="en").event())
                return True

        return Handler(reader, writer)

    async def start(self, uri: str) -> AsyncServer:
        server = AsyncServer.from_uri(uri)
        await server.start(self.handler)
        return server


async def send_command(uri: str, audio: np.ndarray, timeout: float = 60.0) -> tuple[Event, float]:
    """What Home Assistant does with one command: the reply event and when audio-stop was sent."""
    pcm = np.clip(np.round(audio * 32768), -32768, 32767).astype("<i2").tobytes()
    async with AsyncClient.from_uri(uri, connect_timeout=timeout, read_timeout=timeout) as client:
        await client.write_event(Transcribe(language="en").event())
        await client.write_event(AudioStart(rate=16000, width=2, channels=1).event())
        for i in range(0, len(pcm), 2048):
            await client.write_event(AudioChunk(rate=16000, width=2, channels=1, audio=pcm[i:i + 2048]).event())
        sent = time.perf_counter()
        await client.write_event(AudioStop().event())
        while True:
            event = await client.read_event()
            if event is None:
                raise ConnectionError(f"{uri} closed without answering")
            if event.type in ("transcript", "error"):
                return event, sent


async def measure(cfg: Config, audio: np.ndarray, commands: int) -> list[float]:
    upstream = UpstreamASR()
    up = await upstream.start(cfg.assist.upstream)
    stop = asyncio.Event()
    with Store(cfg.store_path) as store, Publisher.from_config(cfg, daemon=False) as publisher:
        proxy = AssistProxy(cfg, store, Recognizer(cfg, store), publisher)
        server = asyncio.create_task(serve(cfg.assist.listen, proxy.describe, proxy.answer, stop))
        await asyncio.sleep(0.2)
        delays = []
        for _ in range(commands + 1):  # the first warms up
            reply, sent = await send_command(cfg.assist.listen, audio)
            assert reply.type == "transcript" and Transcript.from_event(reply).text.startswith("[alan] "), reply
            delays.append(1000 * (upstream.commands[-1].stopped_at - sent))
        stop.set()
        await server
    await up.stop()
    return delays[1:]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="models/default")
    p.add_argument("--commands", type=int, default=50)
    p.add_argument("--out", required=True)
    a = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        cfg = Config(model=a.model, store=str(Path(tmp) / "store.db"), policy="far1").override(
            **{"assist.listen": "tcp://127.0.0.1:10351", "assist.upstream": "tcp://127.0.0.1:10352", "assist.tag": True})
        with Store(cfg.store_path) as store:
            enroller = Enroller.for_store(store, Embedder(cfg.model), cfg, "alan")
            enroll_samples(enroller, store, [(c.name, load_audio(c)) for c in sorted(CLIPS.glob("alan-enroll-*"))])
        audio = np.resize(load_audio(CLIPS / "alan-test-1.flac"), int(COMMAND_SECONDS * 16000))
        delays = asyncio.run(measure(cfg, audio, a.commands))
    result = {"command_seconds": COMMAND_SECONDS, "commands": a.commands, "model": a.model,
              "added_ms_median": round(float(np.median(delays)), 2), "added_ms_p95": round(float(np.percentile(delays, 95)), 2),
              "added_ms_max": round(max(delays), 2),
              "load_average_1min": float(Path("/proc/loadavg").read_text().split()[0])}
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(result, indent=2))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
