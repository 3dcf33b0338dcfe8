"""A real MQTT broker for the integration tests: Debian's `mosquitto`, started on a free loopback
port, plus a subscriber that records what arrives. Without mosquitto the tests skip, except under
CI=true, where they fail and name the missing tool (tests.helpers.require_tool; scripts/setup_apt.sh
installs it)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from tests.helpers import require_tool


def mosquitto_binary() -> str:
    """Debian installs the broker in /usr/sbin, which a non-root PATH may lack."""
    return require_tool(shutil.which("mosquitto") or "/usr/sbin/mosquitto")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Broker:
    """mosquitto on 127.0.0.1:`port`; persistence on, so a stopped-and-restarted broker keeps its
    retained messages and the subscriber's session (like a real home broker)."""

    def __init__(self, workdir: Path, port: int | None = None) -> None:
        self.binary = mosquitto_binary()
        self.port = port or free_port()
        self.dir = workdir
        self.dir.mkdir(parents=True, exist_ok=True)
        self.conf = self.dir / "mosquitto.conf"
        self.conf.write_text(f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence true\n"
                             f"persistence_location {self.dir}/\nlog_dest file {self.dir}/mosquitto.log\n"
                             "log_type all\n" + ("user root\n" if os.geteuid() == 0 else ""))
        self.proc: subprocess.Popen | None = None

    def start(self) -> Broker:
        self.proc = subprocess.Popen([self.binary, "-c", str(self.conf)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"mosquitto exited: {self.proc.stderr.read().decode() if self.proc.stderr else ''}"
                                   f"\n{self.log()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"mosquitto did not listen on {self.port} within 10 s\n{self.log()}")

    def stop(self) -> None:
        """A clean stop (SIGTERM): mosquitto writes its persistence file."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=10)
        self.proc = None

    def log(self) -> str:
        p = self.dir / "mosquitto.log"
        return p.read_text()[-3000:] if p.exists() else ""


@dataclass
class Received:
    topic: str
    payload: bytes
    retain: bool


@dataclass
class Listener:
    """A subscriber that keeps every message; `wait` blocks until a condition on them holds."""

    port: int
    topics: list[str]
    client_id: str = "test-listener"
    messages: list[Received] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._cond = threading.Condition()
        self.connected = threading.Event()
        # a persistent session (clean_session False, QoS 1): what is published while the broker
        # restarts is kept for us
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id=self.client_id, clean_session=False)
        self.client.reconnect_delay_set(1, 1)
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.on_disconnect = lambda *a: self.connected.clear()
        self.client.connect("127.0.0.1", self.port, keepalive=10)
        self.client.loop_start()
        assert self.connected.wait(10), "the test subscriber could not connect"

    def _on_connect(self, client, userdata, flags, reason, properties) -> None:
        for t in self.topics:
            client.subscribe(t, qos=1)
        self.connected.set()

    def _on_message(self, client, userdata, msg) -> None:
        with self._cond:
            self.messages.append(Received(msg.topic, msg.payload, bool(msg.retain)))
            self._cond.notify_all()

    def on(self, topic: str) -> list[Received]:
        with self._cond:
            return [m for m in self.messages if m.topic == topic]

    def wait(self, condition, timeout: float = 15.0, what: str = "") -> None:
        deadline = time.monotonic() + timeout
        with self._cond:
            while not condition():
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"timed out waiting for {what or condition}; got "
                                         f"{[(m.topic, m.payload[:80]) for m in self.messages][-20:]}")
                self._cond.wait(min(left, 0.1))

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def retained(port: int, pattern: str, settle: float = 0.5) -> dict[str, bytes]:
    """The retained messages under `pattern` right now (a fresh clean-session subscriber)."""
    got: dict[str, bytes] = {}
    done = threading.Event()
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"test-retained-{time.monotonic_ns()}")
    client.on_connect = lambda c, *a: c.subscribe(pattern, qos=1)
    client.on_subscribe = lambda *a: done.set()

    def on_message(c, userdata, msg) -> None:
        if msg.retain:
            got[msg.topic] = msg.payload

    client.on_message = on_message
    client.connect("127.0.0.1", port)
    client.loop_start()
    assert done.wait(10)
    time.sleep(settle)
    client.disconnect()
    client.loop_stop()
    return {t: p for t, p in got.items() if p}
