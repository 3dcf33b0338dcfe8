"""Decisions and daemon health over MQTT, with Home Assistant discovery.

Topics (`<prefix>/<device>/...`):
  decision          every decision, JSON (device/publish.py `decision_message`), QoS 1, not retained
  presence/<slug>   "ON" when that person is accepted (Home Assistant turns it off after presence_s)
  status            retained "online" while the daemon is connected; "offline" on a clean stop and,
                    through the MQTT last will, when the daemon dies or its link drops
Discovery (daemon only, retained, `<discovery_prefix>/<component>/speakerid_<device>/<object>/config`):
one presence binary_sensor per enrolled person, a "last speaker" sensor, a "last decision" sensor
(accept / unsure / reject, the message as attributes), a daemon connectivity sensor, all under one
Home Assistant device. Configs for people no longer enrolled are cleared (empty retained
payload), including ones left by an earlier run, found by subscribing to our own discovery topics.

`submit` only appends to a bounded outbox (device/outbox.py). A worker thread sends one decision at a
time while connected and waits for its PUBACK, so at most one message sits inside paho; paho's own
loop thread reconnects with exponential back-off. Nothing here can block the caller.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from device.config import MqttConfig
from device.outbox import Outbox
from device.publish import LABELS

log = logging.getLogger(__name__)

ONLINE, OFFLINE = "online", "offline"
DISCOVERY_REFRESH_S = 30.0  # how often the daemon re-reads the enrolled names for discovery


def slug(name: str) -> str:
    """A topic/object-id-safe form of a speaker name; a hash suffix keeps lossy forms distinct."""
    if re.fullmatch(r"[a-z0-9_]{1,40}", name):
        return name
    base = re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")[:32] or "person"
    return f"{base}_{hashlib.sha256(name.encode()).hexdigest()[:6]}"


@dataclass(frozen=True)
class Topics:
    prefix: str
    device_id: str

    @property
    def base(self) -> str:
        return f"{self.prefix}/{self.device_id}"

    @property
    def decision(self) -> str:
        return f"{self.base}/decision"

    @property
    def status(self) -> str:
        return f"{self.base}/status"

    def presence(self, name: str) -> str:
        return f"{self.base}/presence/{slug(name)}"

    def room(self, name: str) -> str:
        """The room that last recognised this person: one topic for the whole household (retained)."""
        return f"{self.prefix}/household/room/{slug(name)}"


def discovery_configs(topics: Topics, names: list[str], discovery_prefix: str, presence_s: int,
                      model: str = "", room_expire_s: int | None = None) -> dict[str, dict[str, Any]]:
    """discovery topic -> Home Assistant MQTT discovery payload, for these enrolled names; with
    `room_expire_s` (a device that knows its room) also each person's household-wide room sensor,
    which every device of the household announces identically."""
    node = f"speakerid_{topics.device_id}"
    device = {"identifiers": [node], "name": f"speakerid {topics.device_id}", "manufacturer": "speakerid",
              "model": f"speaker verification ({model})" if model else "speaker verification"}
    common = {"device": device, "origin": {"name": "speakerid"}}
    available = {"availability_topic": topics.status, "payload_available": ONLINE, "payload_not_available": OFFLINE}
    configs: dict[str, dict[str, Any]] = {
        f"{discovery_prefix}/sensor/{node}/last_speaker/config": {
            **common, **available, "name": "Last speaker", "unique_id": f"{node}_last_speaker", "icon": "mdi:account-voice",
            "state_topic": topics.decision, "value_template": "{{ value_json.speaker }}",
            "json_attributes_topic": topics.decision, "qos": 1},
        f"{discovery_prefix}/sensor/{node}/last_decision/config": {
            **common, **available, "name": "Last decision", "unique_id": f"{node}_last_decision",
            "icon": "mdi:account-question", "device_class": "enum", "options": list(LABELS),
            "state_topic": topics.decision, "value_template": "{{ value_json.decision }}",
            "json_attributes_topic": topics.decision, "qos": 1},
        f"{discovery_prefix}/binary_sensor/{node}/daemon/config": {
            **common, "name": "Daemon", "unique_id": f"{node}_daemon", "device_class": "connectivity",
            "entity_category": "diagnostic", "state_topic": topics.status, "payload_on": ONLINE,
            "payload_off": OFFLINE, "qos": 1},
    }
    for name in names:
        obj = f"person_{slug(name)}"
        configs[f"{discovery_prefix}/binary_sensor/{node}/{obj}/config"] = {
            **common, **available, "name": name, "unique_id": f"{node}_{obj}", "device_class": "presence",
            "state_topic": topics.presence(name), "payload_on": "ON", "payload_off": "OFF",
            "off_delay": presence_s, "qos": 1}
        if room_expire_s is not None:
            household = {"identifiers": ["speakerid_household"], "name": "speakerid household",
                         "manufacturer": "speakerid", "model": "speaker verification, every room"}
            configs[f"{discovery_prefix}/sensor/speakerid_household/room_{slug(name)}/config"] = {
                "device": household, "origin": {"name": "speakerid"}, "name": f"{name} room",
                "unique_id": f"speakerid_household_room_{slug(name)}", "icon": "mdi:home-account",
                "state_topic": topics.room(name), "expire_after": room_expire_s, "qos": 1}
    return configs


def new_client(cfg: MqttConfig, password: str | None, client_id: str) -> paho.Client:
    """A paho client with the config's credentials and TLS (not connected)."""
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=True)
    if cfg.username:
        client.username_pw_set(cfg.username, password)
    if cfg.tls:
        client.tls_set(ca_certs=cfg.ca_file or None)
    return client


class MqttSink:
    """One MQTT connection. `daemon=True` adds the last will, online/offline and discovery; the CLI
    (daemon=False) connects under its own client id and publishes only its decision."""

    name = "mqtt"

    def __init__(self, cfg: MqttConfig, device_id: str, password: str | None, *, daemon: bool,
                 speakers: Callable[[], list[str]] | None = None, model: str = "",
                 discovery_refresh_s: float = DISCOVERY_REFRESH_S, room: str = "", room_expire_s: int = 0) -> None:
        self.cfg, self.daemon, self.model = cfg, daemon, model
        self.room, self.room_expire_s = room, room_expire_s  # room "": this device has no room
        self.topics = Topics(cfg.topic_prefix, device_id)
        self.outbox: Outbox[dict[str, Any]] = Outbox(cfg.queue)
        self.published = 0
        self.last_publish: float | None = None
        self.connect_failed = threading.Event()  # the latest attempt failed (the CLI stops waiting)
        self._speakers = speakers if daemon and cfg.discovery else None
        self._refresh_s = discovery_refresh_s
        self._announced: dict[str, dict[str, Any]] = {}
        self._announce = threading.Event()
        self._connected = threading.Event()
        self._stop = threading.Event()
        self._pending = 0  # decisions handed to paho and not yet acknowledged
        self._acks: deque[int] = deque(maxlen=256)
        self._ack_cond = threading.Condition()
        client_id = f"speakerid-{device_id}" if daemon else f"speakerid-{device_id}-cli-{os.getpid()}"
        self._client = new_client(cfg, password, client_id)
        if daemon:
            self._client.will_set(self.topics.status, OFFLINE, qos=1, retain=True)
        self._client.reconnect_delay_set(1, cfg.reconnect_max_s)
        self._client.on_connect = self._on_connect
        self._client.on_connect_fail = self._on_connect_fail
        self._client.on_disconnect = self._on_disconnect
        self._client.on_publish = self._on_publish
        self._client.on_message = self._on_message
        self._client.connect_async(cfg.host, cfg.port, cfg.keepalive_s)
        self._client.loop_start()
        self._worker = threading.Thread(target=self._run, name="mqtt-publisher", daemon=True)
        self._worker.start()

    # --- the caller's side (never blocks) -------------------------------------------------------

    def submit(self, message: dict[str, Any]) -> None:
        self.outbox.put(message)

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def status(self) -> dict[str, Any]:
        return {"connected": self.connected, "last_publish": self.last_publish, "published": self.published,
                "queued": len(self.outbox) + self._pending, "dropped": self.outbox.dropped}

    def flush(self, timeout: float) -> bool:
        """Wait until everything queued is acknowledged; gives up early once a connection attempt
        has failed while disconnected (the CLI must not hang on a dead broker)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not len(self.outbox) and not self._pending:
                return True
            if not self.connected and self.connect_failed.is_set():
                return False
            time.sleep(0.02)
        return False

    def close(self, timeout: float = 2.0) -> None:
        """Deliver what can be delivered within `timeout`, say "offline" (daemon), disconnect."""
        self.flush(timeout)
        self._stop.set()
        self._worker.join(timeout=2.0)
        if self.daemon and self.connected:
            info = self._client.publish(self.topics.status, OFFLINE, qos=1, retain=True)
            self._wait_ack(info.mid, deadline=time.monotonic() + 1.0)
        self._client.disconnect()
        self._client.loop_stop()
        self._connected.clear()
        left = len(self.outbox) + self._pending
        if left:
            log.warning("mqtt: %d decision(s) not delivered at shutdown", left)

    # --- paho's loop thread -----------------------------------------------------------------------

    def _on_connect(self, client: paho.Client, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        if reason.is_failure:
            log.warning("mqtt: broker %s:%d refused the connection: %s", self.cfg.host, self.cfg.port, reason)
            self.connect_failed.set()
            return
        log.info("mqtt: connected to %s:%d", self.cfg.host, self.cfg.port)
        self.connect_failed.clear()
        if self.daemon:
            client.publish(self.topics.status, ONLINE, qos=1, retain=True)
            if self._speakers is not None:
                self._announce.set()
        self._connected.set()

    def _on_connect_fail(self, client: paho.Client, userdata: Any) -> None:
        if not self.connect_failed.is_set():
            log.warning("mqtt: cannot reach %s:%d; retrying with back-off", self.cfg.host, self.cfg.port)
        self.connect_failed.set()

    def _on_disconnect(self, client: paho.Client, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        if self._connected.is_set() and not self._stop.is_set():
            log.warning("mqtt: lost the broker (%s); reconnecting with back-off", reason)
        self._connected.clear()

    def _on_publish(self, client: paho.Client, userdata: Any, mid: int, reason: Any, properties: Any) -> None:
        with self._ack_cond:
            self._acks.append(mid)
            self._ack_cond.notify_all()

    def _on_message(self, client: paho.Client, userdata: Any, msg: paho.MQTTMessage) -> None:
        # a retained discovery config of ours for someone no longer enrolled: clear it
        if msg.payload and msg.topic not in self._announced:
            log.info("mqtt: clearing stale discovery config %s", msg.topic)
            client.publish(msg.topic, b"", qos=1, retain=True)

    # --- the worker thread ------------------------------------------------------------------------

    def _run(self) -> None:
        refreshed = 0.0
        while not self._stop.is_set():
            if not self._connected.wait(0.2):
                continue
            if self._speakers is not None and (self._announce.is_set()
                                               or time.monotonic() - refreshed > self._refresh_s):
                self._discovery(resubscribe=self._announce.is_set())
                self._announce.clear()
                refreshed = time.monotonic()
            message = self.outbox.take(timeout=0.2)
            if message is None:
                continue
            self._pending = 1
            try:
                for topic, payload, retain in self._publications(message):
                    info = self._client.publish(topic, payload, qos=1, retain=retain)
                    # not connected any more: paho keeps the QoS 1 message and resends it on reconnect
                    self._wait_ack(info.mid)
                if not self._stop.is_set():
                    self.published += 1
                    self.last_publish = time.time()
            except Exception as exc:  # a bad message must not kill the publisher
                log.error("mqtt: could not publish a decision: %s", exc)
            finally:
                self._pending = 0

    def _publications(self, message: dict[str, Any]) -> list[tuple[str, str]]:
        out = [(self.topics.decision, json.dumps(message), False)]
        if message.get("accepted") and message.get("speaker") not in (None, "unknown"):
            out.append((self.topics.presence(str(message["speaker"])), "ON", False))
            if self.room:
                out.append((self.topics.room(str(message["speaker"])), self.room, True))
        return out

    def _wait_ack(self, mid: int, deadline: float | None = None) -> bool:
        with self._ack_cond:
            while mid not in self._acks:
                if self._stop.is_set() and deadline is None or deadline is not None and time.monotonic() > deadline:
                    return False
                self._ack_cond.wait(0.1)
            self._acks.remove(mid)
            return True

    def _discovery(self, resubscribe: bool) -> None:
        assert self._speakers is not None
        try:
            names = sorted(self._speakers())
        except Exception as exc:  # e.g. the store is briefly locked: keep what was announced
            log.warning("mqtt: could not read the enrolled names for discovery: %s", exc)
            return
        configs = discovery_configs(self.topics, names, self.cfg.discovery_prefix, self.cfg.presence_s, self.model,
                                    self.room_expire_s if self.room else None)
        if not resubscribe and configs == self._announced:
            return
        gone = set(self._announced) - set(configs)
        self._announced = configs  # before publishing: our own echoes must not look stale
        for topic in gone:
            self._client.publish(topic, b"", qos=1, retain=True)
        for topic, payload in configs.items():
            self._client.publish(topic, json.dumps(payload), qos=1, retain=True)
        if resubscribe:
            self._client.subscribe(f"{self.cfg.discovery_prefix}/+/speakerid_{self.topics.device_id}/+/config", qos=1)
