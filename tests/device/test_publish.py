"""Decisions to the home: MQTT against a real broker (Debian's mosquitto on a free loopback port) with
Home Assistant discovery and a last will, and a signed webhook against a local HTTP server."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from device.audio import load_audio, save_wav
from device.config import Config, ConfigError
from device.daemon import run_daemon
from device.mqtt import slug
from device.publish import Publisher, decision_message
from device.store import Store
from device.webhook import SIGNATURE_HEADER
from tests.device.broker import Broker, Listener, free_port, retained
from tests.device.ha_discovery import problems
from tests.helpers import DEVICE_PY, REPO, demo_household, recognize_offline, vad_segments

CLIPS = REPO / "device" / "demo_clips"
SHIPPED = REPO / "models" / "default"
DECISION_KEYS = {"time", "device", "kind", "decision", "accepted", "speaker", "claim", "score", "threshold", "margin",
                 "utterances", "session", "final"}
GAP = np.zeros(16000, np.float32)
ONE_EACH = 0.5  # session.gap_s shorter than GAP: every clip is its own session (tests/device/test_sessions.py: sessions)


def decision(score: float, speaker: str = "alan", accepted: bool = True, kind: str = "identify",
             label: str | None = None) -> dict:
    """A decision dict as Result.to_dict() makes it (plus fields that must never be published)."""
    return {"kind": kind, "decision": label or ("accept" if accepted else "reject"), "accepted": accepted,
            "speaker": speaker, "claim": speaker if kind == "verify" else None, "score": score, "threshold": 0.5,
            "margin": score - 0.5, "utterances": 1, "session": None, "seconds": 2.0, "speech_seconds": 1.5, "snr_db": 30.0,
            "embedding": [0.1] * 128, "features": [[1.0] * 20] * 50, "audio": "UklGRg=="}


def secret_file(path: Path, text: str, mode: int = 0o600) -> Path:
    path.write_text(text + "\n")
    path.chmod(mode)
    return path


def mqtt_config(port: int, **mqtt: object) -> Config:
    return Config().override(**{"mqtt.host": "127.0.0.1", "mqtt.port": port, "mqtt.device_id": "testpi",
                                **{f"mqtt.{k}": v for k, v in mqtt.items()}})


def wait_until(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out after {timeout} s waiting for {what}"
        time.sleep(0.05)


def payloads(listener: Listener, topic: str) -> list[dict]:
    return [json.loads(m.payload) for m in listener.on(topic)]


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    b = Broker(tmp_path / "broker").start()
    yield b
    b.stop()


@pytest.fixture(scope="module")
def shipped(tmp_path_factory: pytest.TempPathFactory) -> Config:
    return demo_household(tmp_path_factory.mktemp("publish") / "store.db")


# --- configuration and the message --------------------------------------------------------------


def test_config_tables_and_refusals(tmp_path: Path) -> None:
    toml = tmp_path / "device.toml"
    toml.write_text('[mqtt]\nhost = "localhost"\nport = 1883\nusername = ""\npassword_file = ""\ntls = false\n'
                    'topic_prefix = "speakerid"\ndevice_id = "pi"\n[webhook]\nurl = "http://127.0.0.1:9/hook"\n'
                    'secret_file = "/etc/speakerid/webhook.secret"\n')
    cfg = Config.load(toml)
    assert (cfg.mqtt.host, cfg.mqtt.port, cfg.mqtt.topic_prefix, cfg.mqtt.device_id) == ("localhost", 1883, "speakerid", "pi")
    assert cfg.mqtt.discovery and cfg.mqtt.discovery_prefix == "homeassistant" and cfg.mqtt.queue == 200
    assert cfg.webhook.url == "http://127.0.0.1:9/hook" and cfg.webhook.retries == 5
    assert Config().mqtt.host == "" and Config().webhook.url == ""  # both off unless configured
    for body, key in (("[mqtt]\nport = 0", "mqtt.port"), ('[mqtt]\ntopic_prefix = "home/#"', "mqtt.topic_prefix"),
                      ('[mqtt]\ndevice_id = "my pi"', "mqtt.device_id"), ('[mqtt]\nhots = "x"', "mqtt.hots"),
                      ('[mqtt]\nport = "1883"', "mqtt.port"), ('[webhook]\nurl = "http://x/"', "webhook.secret_file"),
                      ('[webhook]\nurl = "ftp://x/"\nsecret_file = "/s"', "webhook.url")):
        toml.write_text(body + "\n")
        with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
            Config.load(toml)


def test_secret_files_must_be_owner_only(tmp_path: Path) -> None:
    loose = secret_file(tmp_path / "mqtt.pass", "hunter2", 0o644)
    cfg = mqtt_config(free_port(), username="pi", password_file=str(loose))
    with pytest.raises(ConfigError, match=r"mqtt\.password_file: .*\(mode 0644\).*chmod 600"):
        Publisher.from_config(cfg, daemon=False)
    hook = secret_file(tmp_path / "hook.secret", "s3cret", 0o640)
    with pytest.raises(ConfigError, match=r"webhook\.secret_file: .*\(mode 0640\)"):
        Publisher.from_config(Config().override(**{"webhook.url": "http://127.0.0.1:9/", "webhook.secret_file": str(hook)}),
                              daemon=False)
    with pytest.raises(ConfigError, match="does not exist"):
        Publisher.from_config(mqtt_config(1883, password_file=str(tmp_path / "missing")), daemon=False)
    # the CLI refuses with exit code 2 and the reason on stderr, before it decides anything
    toml = tmp_path / "device.toml"
    toml.write_text(f'model = "{SHIPPED}"\nstore = "{tmp_path / "store.db"}"\n[mqtt]\nhost = "127.0.0.1"\n'
                    f'username = "pi"\npassword_file = "{loose}"\n')
    proc = subprocess.run([DEVICE_PY, "-m", "device", "identify", "--config", toml, "--file", CLIPS / "alan-test-1.flac",
                           "--json"], cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 2 and proc.stdout == "", proc.stdout + proc.stderr
    assert "mqtt.password_file" in proc.stderr and "chmod 600" in proc.stderr and "hunter2" not in proc.stderr
    loose.chmod(0o600)
    publisher = Publisher.from_config(cfg, daemon=False)
    assert [s.name for s in publisher.sinks] == ["mqtt"]
    publisher.close(0.1)


def test_message_is_an_allow_list() -> None:
    msg = decision_message({**decision(0.8123456), "time": 1700000000.5}, "pi")
    assert set(msg) == DECISION_KEYS
    assert msg == {"time": 1700000000.5, "device": "pi", "kind": "identify", "decision": "accept", "accepted": True,
                   "speaker": "alan", "claim": None, "score": 0.8123, "threshold": 0.5, "margin": 0.3123,
                   "utterances": 1, "session": None, "final": True}  # the CLI's decisions are final
    # an unknown voice names nobody, not even the closest profile; a failed verify keeps its claim
    assert decision_message(decision(0.2, accepted=False), "pi")["speaker"] == "unknown"
    failed = decision_message(decision(0.2, "mikhail", accepted=False, kind="verify"), "pi")
    assert (failed["speaker"], failed["claim"], failed["decision"]) == ("unknown", "mikhail", "reject")
    # unsure is its own answer and names nobody either; a label contradicting `accepted` is refused
    unsure = decision_message({**decision(0.45, accepted=False, label="unsure"), "utterances": 3, "session": "ab12",
                               "final": False}, "pi")
    assert {k: unsure[k] for k in ("decision", "accepted", "speaker", "utterances", "session", "final")} == {
        "decision": "unsure", "accepted": False, "speaker": "unknown", "utterances": 3, "session": "ab12", "final": False}
    with pytest.raises(ValueError, match="does not agree"):
        decision_message(decision(0.45, accepted=False, label="accept"), "pi")
    assert slug("alan") == "alan" and slug("Zoë O'Neil").startswith("zo_o_neil_") and slug("Zoë") != slug("zoe")


# --- MQTT against a real broker -----------------------------------------------------------------


def test_daemon_publishes_decisions_health_and_discovery(broker: Broker, shipped: Config) -> None:
    listener = Listener(broker.port, ["speakerid/#"], client_id="t-daemon")
    cfg = shipped.override(**{"mqtt.host": "127.0.0.1", "mqtt.port": broker.port, "mqtt.device_id": "testpi",
                              "session.gap_s": ONE_EACH})
    clips = [load_audio(CLIPS / f"{who}-test-1.flac") for who in ("alan", "mikhail", "victoria")]
    stream = np.concatenate([GAP, clips[0], GAP, clips[1], GAP, clips[2], GAP])

    class Source:
        name = "test:clips"

        def blocks(self, stop: threading.Event) -> Iterator[np.ndarray]:
            yield GAP[:480]
            wait_until(lambda: listener.on("speakerid/testpi/status"), 10, "the daemon's online status")
            for start in range(0, len(stream), 480):
                yield stream[start:start + 480]

    counters = run_daemon(cfg, Source(), threading.Event())
    assert counters.utterances == 3 and counters.errors == 0
    listener.wait(lambda: len(listener.on("speakerid/testpi/decision")) == 6, what="three decisions and their finals")
    published = payloads(listener, "speakerid/testpi/decision")
    assert all(set(d) == DECISION_KEYS for d in published)
    got = published[::2]  # each session's decision, then the same again as final when the gap has passed
    assert [d["final"] for d in published] == [False, True] * 3
    assert [{**d, "final": False, "time": 0} for d in published[1::2]] == [{**d, "time": 0} for d in got]
    assert len({d["session"] for d in got}) == 3 and all(d["utterances"] == 1 for d in got)
    assert [(d["kind"], d["speaker"], d["decision"], d["device"]) for d in got] == [
        ("identify", "alan", "accept", "testpi"), ("identify", "mikhail", "accept", "testpi"),
        ("identify", "unknown", "reject", "testpi")]
    assert all(d["score"] >= d["threshold"] for d in got[:2]) and got[2]["score"] < got[2]["threshold"]
    assert all(abs(d["margin"] - (d["score"] - d["threshold"])) < 2e-4 for d in got)
    assert [m.payload for m in listener.on("speakerid/testpi/presence/alan")] == [b"ON", b"ON"]  # decision, final
    assert [m.payload for m in listener.on("speakerid/testpi/presence/mikhail")] == [b"ON", b"ON"]
    assert [m.payload for m in listener.on("speakerid/testpi/status")] == [b"online", b"offline"]  # a clean stop
    # no audio, MFCCs or embeddings: every message is a short JSON or a word
    assert max(len(m.payload) for m in listener.messages) < 400
    assert retained(broker.port, "speakerid/testpi/status") == {"speakerid/testpi/status": b"offline"}
    configs = {t: json.loads(p) for t, p in retained(broker.port, "homeassistant/#").items()}
    node = "homeassistant/{}/speakerid_testpi/{}/config"
    assert set(configs) == {node.format("binary_sensor", "person_alan"), node.format("binary_sensor", "person_mikhail"),
                            node.format("sensor", "last_speaker"), node.format("sensor", "last_decision"),
                            node.format("binary_sensor", "daemon")}
    assert [p for t, c in configs.items() for p in problems(t, c)] == []
    alan = configs[node.format("binary_sensor", "person_alan")]
    assert (alan["name"], alan["device_class"], alan["state_topic"], alan["availability_topic"]) == (
        "alan", "presence", "speakerid/testpi/presence/alan", "speakerid/testpi/status")
    last = configs[node.format("sensor", "last_decision")]
    assert (last["name"], last["device_class"], last["options"], last["state_topic"], last["value_template"],
            last["json_attributes_topic"]) == ("Last decision", "enum", ["accept", "unsure", "reject"],
                                               "speakerid/testpi/decision", "{{ value_json.decision }}",
                                               "speakerid/testpi/decision")
    with Store(cfg.store_path, readonly=True) as store:
        mqtt = store.status()["integrations"]["mqtt"]
    assert (mqtt["published"], mqtt["queued"], mqtt["dropped"], mqtt["connected"]) == (6, 0, 0, False)
    assert time.time() - mqtt["last_publish"] < 60
    listener.close()


def test_daemon_keeps_deciding_with_the_broker_down(shipped: Config) -> None:
    cfg = shipped.override(**{"mqtt.host": "127.0.0.1", "mqtt.port": free_port(), "mqtt.device_id": "downpi",
                              "mqtt.queue": 2, "webhook.url": f"http://127.0.0.1:{free_port()}/",
                              "webhook.secret_file": str(secret_file(shipped.store_path.parent / "hook.secret", "k")),
                              "webhook.queue": 2, "webhook.retries": 50, "session.gap_s": ONE_EACH})
    clips = [load_audio(CLIPS / f"{who}-test-{i}.flac") for i in (1, 2) for who in ("alan", "mikhail")]
    stream = np.concatenate([x for clip in clips for x in (GAP, clip)] + [GAP])

    class Source:
        name = "test:clips"

        def blocks(self, stop: threading.Event) -> Iterator[np.ndarray]:
            for start in range(0, len(stream), 480):
                yield stream[start:start + 480]

    with Store(cfg.store_path) as store:
        before = store.count_events()
    start = time.monotonic()
    decided: list[float] = []
    counters = run_daemon(cfg, Source(), threading.Event(), emit=lambda r: decided.append(time.monotonic()))
    assert counters.utterances == 4 and counters.errors == 0 and len(decided) == 4
    assert decided[-1] - start < 10 and time.monotonic() - decided[-1] < 2 * 2.0 + 1.5  # shutdown waits at most 2 s a sink
    with Store(cfg.store_path, readonly=True) as store:
        assert store.count_events() - before == 4
        integrations = store.status()["integrations"]
    # 8 messages: each of the 4 sessions' decision and its final
    assert {k: integrations["mqtt"][k] for k in ("connected", "published", "queued", "dropped")} == {
        "connected": False, "published": 0, "queued": 2, "dropped": 6}
    webhook = integrations["webhook"]  # one message in its retry loop, two queued, the oldest ones dropped
    assert (webhook["published"], webhook["queued"] + webhook["dropped"] + webhook["failed"]) == (0, 8)
    assert webhook["queued"] <= 3 and webhook["dropped"] >= 1


def test_last_will_says_offline_after_kill_9(broker: Broker, shipped: Config, tmp_path: Path) -> None:
    listener = Listener(broker.port, ["speakerid/#"], client_id="t-will")
    audio = np.concatenate([GAP, load_audio(CLIPS / "alan-test-2.flac"), np.zeros(16000 * 120, np.float32)])
    save_wav(tmp_path / "long.wav", audio)
    toml = tmp_path / "device.toml"
    toml.write_text(f'model = "{SHIPPED}"\nstore = "{shipped.store}"\npolicy = "far1"\n'
                    f'[mqtt]\nhost = "127.0.0.1"\nport = {broker.port}\ndevice_id = "willpi"\n')
    proc = subprocess.Popen([DEVICE_PY, "-m", "device", "run", "--config", toml, "--file", tmp_path / "long.wav",
                             "--realtime", "--json"], cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        listener.wait(lambda: listener.on("speakerid/willpi/decision"), timeout=60, what="the daemon's first decision")
        assert [m.payload for m in listener.on("speakerid/willpi/status")] == [b"online"]
        first = payloads(listener, "speakerid/willpi/decision")[0]
        want = recognize_offline(shipped, vad_segments(shipped, audio)[0], "far1").decision  # what the daemon hears
        assert (first["kind"], first["decision"]) == ("identify", want.label)
        assert first["speaker"] == (want.speaker if want.accepted else "unknown")
        assert first["score"] == pytest.approx(want.score, abs=1e-3)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        listener.wait(lambda: len(listener.on("speakerid/willpi/status")) == 2, timeout=10, what="the last will")
    finally:
        if proc.poll() is None:
            proc.kill()
    assert [m.payload for m in listener.on("speakerid/willpi/status")] == [b"online", b"offline"]
    assert retained(broker.port, "speakerid/willpi/status") == {"speakerid/willpi/status": b"offline"}
    listener.close()


def test_publishing_resumes_after_the_broker_restarts(broker: Broker) -> None:
    listener = Listener(broker.port, ["speakerid/testpi/decision"], client_id="t-restart")
    publisher = Publisher.from_config(mqtt_config(broker.port, discovery=False), daemon=True)
    mqtt = publisher.sinks[0]
    try:
        wait_until(lambda: mqtt.status()["connected"], 10, "the first connection")
        publisher.decision(decision(0.91))
        listener.wait(lambda: len(listener.on("speakerid/testpi/decision")) == 1, what="the first decision")
        wait_until(lambda: mqtt.status()["published"] == 1, 5, "the broker's acknowledgement")
        broker.stop()
        wait_until(lambda: not mqtt.status()["connected"], 10, "the publisher to notice the broker is gone")
        publisher.decision(decision(0.92))
        publisher.decision(decision(0.93))
        assert mqtt.status()["queued"] == 2
        down = time.monotonic()
        broker.start()
        # QoS 1 is at-least-once: the broker may hand the listener its first message again if it
        # stopped before storing the listener's acknowledgement, so compare distinct messages in order
        def scores() -> list[float]:
            return list(dict.fromkeys(d["score"] for d in payloads(listener, "speakerid/testpi/decision")))

        listener.wait(lambda: len(scores()) == 3, timeout=30, what="the decisions queued while the broker was down")
        resumed = time.monotonic() - down
        assert scores() == [0.91, 0.92, 0.93]
        wait_until(lambda: mqtt.status()["queued"] == 0, 5, "the queue to drain")
        status = mqtt.status()
        assert status["connected"] and status["published"] == 3 and status["dropped"] == 0
        assert resumed < 20  # reconnect back-off starts at 1 s and doubles
        assert retained(broker.port, "speakerid/testpi/status") == {"speakerid/testpi/status": b"online"}
    finally:
        publisher.close(1.0)
        listener.close()


def test_queue_bound_holds_and_the_oldest_are_dropped(tmp_path: Path) -> None:
    broker = Broker(tmp_path / "broker").start()
    listener = Listener(broker.port, ["speakerid/testpi/decision"], client_id="t-bound")
    listener.close()
    broker.stop()  # the broker keeps the listener's session; nothing listens on the port now
    publisher = Publisher.from_config(mqtt_config(broker.port, queue=5, discovery=False), daemon=True)
    mqtt = publisher.sinks[0]
    try:
        for i in range(20):  # the broker is down: each call only queues (its cost: docs/RELIABILITY.md)
            publisher.decision(decision(i / 100))
        assert publisher.status()["mqtt"] == {"connected": False, "last_publish": None, "published": 0,
                                              "queued": 5, "dropped": 15}
        broker.start()
        listener = Listener(broker.port, ["speakerid/testpi/decision"], client_id="t-bound")
        listener.wait(lambda: len(listener.on("speakerid/testpi/decision")) >= 5, timeout=30, what="the queued five")
        time.sleep(0.5)
        assert [d["score"] for d in payloads(listener, "speakerid/testpi/decision")] == [0.15, 0.16, 0.17, 0.18, 0.19]
        wait_until(lambda: mqtt.status()["published"] == 5, 5, "the publisher's count")
        assert mqtt.status()["queued"] == 0 and mqtt.status()["dropped"] == 15
    finally:
        publisher.close(1.0)
        listener.close()
        broker.stop()


def test_discovery_follows_enrollment_and_clears_stale_configs(broker: Broker) -> None:
    stale = "homeassistant/binary_sensor/speakerid_testpi/person_carol/config"
    seed = Listener(broker.port, [], client_id="t-seed")
    seed.client.publish(stale, json.dumps({"name": "carol", "state_topic": "x"}), qos=1, retain=True).wait_for_publish(5)
    seed.close()
    assert stale in retained(broker.port, "homeassistant/#")
    names = ["alan"]
    publisher = Publisher.from_config(mqtt_config(broker.port, presence_s=90), daemon=True, speakers=lambda: list(names),
                                      model="default", discovery_refresh_s=0.2)

    def people() -> dict[str, dict]:
        return {json.loads(p)["name"]: json.loads(p) for t, p in retained(broker.port, "homeassistant/#", 0.3).items()
                if "/person_" in t}

    try:
        wait_until(lambda: set(people()) == {"alan"}, 15, "alan announced and carol's stale config cleared")
        names.append("Zoë O'Neil")
        wait_until(lambda: set(people()) == {"alan", "Zoë O'Neil"}, 15, "a newly enrolled person announced")
        names.remove("alan")
        wait_until(lambda: set(people()) == {"Zoë O'Neil"}, 15, "a deleted person's config cleared")
        configs = {t: json.loads(p) for t, p in retained(broker.port, "homeassistant/#").items()}
        assert [p for t, c in configs.items() for p in problems(t, c)] == []
        zoe = people()["Zoë O'Neil"]
        assert zoe["off_delay"] == 90 and zoe["device"]["identifiers"] == ["speakerid_testpi"]
        assert zoe["state_topic"] == f"speakerid/testpi/presence/{slug('Zoë O' + chr(39) + 'Neil')}"
        assert len({c["unique_id"] for c in configs.values()}) == len(configs) == 4  # Zoë, last speaker and decision, daemon
    finally:
        publisher.close(1.0)


def test_cli_verify_publishes_its_decision(broker: Broker, shipped: Config, tmp_path: Path) -> None:
    listener = Listener(broker.port, ["speakerid/#"], client_id="t-cli")
    toml = tmp_path / "device.toml"
    toml.write_text(f'model = "{SHIPPED}"\nstore = "{shipped.store}"\npolicy = "far1"\n'
                    f'[mqtt]\nhost = "127.0.0.1"\nport = {broker.port}\ndevice_id = "clipi"\n')
    proc = subprocess.run([DEVICE_PY, "-m", "device", "verify", "--claim", "mikhail", "--config", toml, "--file",
                           CLIPS / "mikhail-test-2.flac", "--json"], cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert {"decision", "accepted", "speaker", "score", "threshold"} <= set(out) and out["accepted"] is True
    listener.wait(lambda: listener.on("speakerid/clipi/decision"), what="the CLI's decision")
    (published,) = payloads(listener, "speakerid/clipi/decision")
    assert (published["kind"], published["speaker"], published["claim"], published["score"]) == (
        "verify", "mikhail", "mikhail", out["score"])
    assert listener.on("speakerid/clipi/status") == []  # the CLI is not the daemon: no health messages
    listener.close()


# --- the webhook ----------------------------------------------------------------------------------


class Hook(BaseHTTPRequestHandler):
    answers: list[int] = []
    seen: list[tuple[float, dict, bytes]] = []

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Hook.seen.append((time.monotonic(), dict(self.headers), body))
        self.send_response(Hook.answers.pop(0) if Hook.answers else 200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def hook_server() -> Iterator[str]:
    Hook.answers, Hook.seen = [], []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/speakerid"
    server.shutdown()
    server.server_close()


def test_webhook_is_signed_and_retried_with_back_off(hook_server: str, tmp_path: Path) -> None:
    secret = secret_file(tmp_path / "hook.secret", "correct horse battery staple")
    cfg = Config().override(**{"webhook.url": hook_server, "webhook.secret_file": str(secret), "webhook.backoff_s": 0.2,
                               "webhook.retries": 3, "mqtt.device_id": "hookpi"})
    Hook.answers = [503, 503, 200, 400]
    publisher = Publisher.from_config(cfg, daemon=True)
    webhook = publisher.sinks[0]
    try:
        publisher.decision(decision(0.77, "mikhail", kind="verify"))
        wait_until(lambda: webhook.status()["published"] == 1, 10, "the third attempt to succeed")
        assert len(Hook.seen) == 3
        gaps = [b[0] - a[0] for a, b in zip(Hook.seen, Hook.seen[1:])]
        assert 0.2 <= gaps[0] < 0.39 and 0.4 <= gaps[1] < 0.79, gaps  # 0.2 s, then doubled
        for _, headers, body in Hook.seen:
            expected = "sha256=" + hmac.new(b"correct horse battery staple", body, hashlib.sha256).hexdigest()
            assert hmac.compare_digest(headers[SIGNATURE_HEADER], expected)
            assert headers["Content-Type"] == "application/json"
        sent = json.loads(Hook.seen[0][2])
        assert set(sent) == DECISION_KEYS and (sent["device"], sent["speaker"], sent["claim"]) == ("hookpi", "mikhail", "mikhail")
        publisher.decision(decision(0.1, accepted=False))  # answered 400: a client error is not retried
        wait_until(lambda: webhook.status()["failed"] == 1, 10, "the refused post to be counted")
        assert len(Hook.seen) == 4
        status = webhook.status()
        assert (status["published"], status["queued"], status["dropped"], status["connected"]) == (1, 0, 0, True)
    finally:
        publisher.close(1.0)


def test_webhook_receiver_down_costs_nothing(tmp_path: Path) -> None:
    secret = secret_file(tmp_path / "hook.secret", "k")
    cfg = Config().override(**{"webhook.url": f"http://127.0.0.1:{free_port()}/", "webhook.secret_file": str(secret),
                               "webhook.backoff_s": 0.05, "webhook.retries": 1, "webhook.queue": 3})
    publisher = Publisher.from_config(cfg, daemon=True)
    webhook = publisher.sinks[0]
    try:
        start = time.perf_counter()
        for i in range(10):
            publisher.decision(decision(i / 10))
        # sending in the caller would wait at least one back-off (0.05 s) per decision: 0.5 s for ten
        assert time.perf_counter() - start < 10 * 0.05
        wait_until(lambda: webhook.status()["queued"] == 0, 10, "every decision tried")
        status = webhook.status()
        assert status["published"] == 0 and status["connected"] is False
        assert status["failed"] + status["dropped"] == 10 and status["dropped"] >= 6
        assert webhook.attempts == 2 * status["failed"]  # one retry each
    finally:
        publisher.close(0.5)
