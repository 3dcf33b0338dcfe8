"""One household, several devices: profiles shared through the home's MQTT broker.

Each device publishes every profile it holds, and every deletion as a tombstone, as a retained
message under `<prefix>/household/profiles/<id>`, encrypted and authenticated with the household
key (Fernet from `cryptography`: AES-128-CBC with HMAC-SHA256). `<id>` is a keyed hash of the
person's name, so the broker learns neither names nor embeddings. The key file (0600, written by
`python -m device household init --key-file PATH`) is all a device needs to join: copy it there and
name it in `[household] key_file`.

Merging what arrives: per person the newest version wins (a profile's `updated` time, a
tombstone's deletion time), so an older message replayed to the broker cannot bring back a deleted
or replaced profile on a device that has seen the newer one. A message that fails authentication
(another key, tampering) is dropped and counted, never merged. A profile made with another model
bundle is stored with that bundle's hash, so it is kept but never used (profiles are looked up by
the running bundle's sha256). `python -m device profiles sync` does one round; the daemon repeats
it every `[household] sync_s`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from device.config import Config, ConfigError
from device.mqtt import new_client
from device.profile_export import save_entry, speaker_entry
from device.publish import default_device_id, read_secret
from device.store import LAST_SYNC, Store

log = logging.getLogger("device.household")
MESSAGE_FORMAT = "speakerid-household-profile"
MESSAGE_VERSION = 1
QUIET_S = 0.5  # no new retained message for this long after subscribing: the broker has sent them all


def init_key(path: str | Path) -> Path:
    """Write a new household key, readable by its owner only; never overwrites one."""
    p = Path(path).expanduser()
    try:
        fd = os.open(p, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except FileExistsError:
        raise ConfigError(f"{p} exists: a household key is never overwritten (copy it to join a device)") from None
    with os.fdopen(fd, "w") as f:
        f.write(Fernet.generate_key().decode() + "\n")
    return p


@dataclass
class SyncReport:
    received: int = 0  # retained messages seen
    merged: list[str] = field(default_factory=list)  # profiles taken from others (newer than ours)
    deleted: list[str] = field(default_factory=list)  # profiles removed by others' tombstones
    other_model: list[str] = field(default_factory=list)  # kept, not used: made with another bundle
    rejected: int = 0  # failed authentication or malformed: dropped
    published: int = 0  # our profiles and tombstones the broker did not have in this version
    seconds: float = 0.0
    devices: dict[str, list[str]] = field(default_factory=dict)  # device id -> the profiles it last published
    time: float = 0.0  # when the round ended

    def to_dict(self) -> dict:
        return dict(self.__dict__)


class Household:
    """The household key and what it protects: topic ids, sealed and opened messages."""

    def __init__(self, cfg: Config) -> None:
        if not cfg.household.key_file:
            raise ConfigError("no [household] key_file: nothing is shared (python -m device household init --key-file P)")
        if not cfg.mqtt.host:
            raise ConfigError("[household] shares profiles through the MQTT broker: set [mqtt] host")
        key = read_secret(cfg.household.key_file, "household.key_file")
        try:
            self.fernet = Fernet(key)
        except ValueError:
            raise ConfigError(f"household.key_file: {cfg.household.key_file} is not a household key") from None
        self._tag_key = hashlib.sha256(b"speakerid topic " + key.encode()).digest()
        self.prefix = f"{cfg.mqtt.topic_prefix}/household/profiles"
        self.device_id = cfg.mqtt.device_id or default_device_id()

    def topic(self, name: str) -> str:
        return f"{self.prefix}/{hmac.new(self._tag_key, name.encode(), hashlib.sha256).hexdigest()[:32]}"

    def seal(self, doc: dict) -> bytes:
        return self.fernet.encrypt(json.dumps(doc).encode())

    def open(self, topic: str, payload: bytes) -> dict | None:
        """The message's document, or None when it fails authentication or does not belong on `topic`."""
        try:
            doc = json.loads(self.fernet.decrypt(payload))
        except (InvalidToken, ValueError, UnicodeDecodeError):
            return None
        ok = (isinstance(doc, dict) and doc.get("format") == MESSAGE_FORMAT and doc.get("version") == MESSAGE_VERSION
              and isinstance(doc.get("name"), str) and isinstance(doc.get("updated"), (int, float))
              and topic == self.topic(doc["name"]))
        return doc if ok else None


def outgoing(store: Store, household: Household) -> dict[str, dict]:
    """{topic: document} of every profile and tombstone this store holds."""
    docs = {}
    for name, when in store.deletions().items():
        docs[household.topic(name)] = {"name": name, "updated": when, "deleted": True}
    for speaker in store.list_speakers():
        docs[household.topic(speaker.name)] = {"name": speaker.name, "updated": speaker.updated, "deleted": False,
                                               "model": speaker.model, "model_sha256": speaker.model_sha,
                                               "speaker": speaker_entry(store, speaker)}
    return {t: {"format": MESSAGE_FORMAT, "version": MESSAGE_VERSION, "origin": household.device_id, **d}
            for t, d in docs.items()}


def local_version(store: Store, name: str) -> float:
    speaker = store.get_speaker(name)
    if speaker is not None:
        return speaker.updated
    return store.deletions().get(name, float("-inf"))


def merge(store: Store, household: Household, messages: dict[str, bytes], model_sha: str,
          report: SyncReport) -> dict[str, float]:
    """Take every message newer than this store's version of that person; {topic: version} of
    what the broker holds (authenticated messages only)."""
    on_broker = {}
    for topic, payload in messages.items():
        doc = household.open(topic, payload)
        if doc is None:
            report.rejected += 1
            continue
        on_broker[topic] = float(doc["updated"])
        if not doc.get("deleted"):
            report.devices.setdefault(str(doc.get("origin", "?")), []).append(doc["name"])
        name = doc["name"]
        if doc["updated"] <= local_version(store, name):
            continue
        try:
            if doc.get("deleted"):
                if store.delete_speaker(name, when=doc["updated"]):
                    report.deleted.append(name)
                else:  # never had it: remember the tombstone all the same
                    store.remember_deletion(name, doc["updated"])
                continue
            save_entry(store, doc["speaker"], doc["model"], doc["model_sha256"], updated=doc["updated"])
        except (KeyError, TypeError, ValueError):
            report.rejected += 1
            continue
        (report.merged if doc["model_sha256"] == model_sha else report.other_model).append(name)
    report.devices = {device: sorted(names) for device, names in report.devices.items()}
    return on_broker


def sync(cfg: Config, store: Store, model_sha: str, timeout: float = 10.0) -> SyncReport:
    """One round: read the retained profiles, merge the newer ones, publish ours the broker lacks."""
    household, report, t0 = Household(cfg), SyncReport(), time.monotonic()
    password = read_secret(cfg.mqtt.password_file, "mqtt.password_file") if cfg.mqtt.password_file else None
    client = new_client(cfg.mqtt, password, f"speakerid-{household.device_id}-sync-{os.getpid()}")
    messages: dict[str, bytes] = {}
    subscribed, last = threading.Event(), [time.monotonic()]

    def on_message(_client, _userdata, msg) -> None:
        messages[msg.topic] = msg.payload
        last[0] = time.monotonic()

    def on_connect(c, _userdata, _flags, reason, _properties) -> None:
        if not reason.is_failure:
            c.subscribe(f"{household.prefix}/+", qos=1)

    def on_subscribe(*_args) -> None:
        last[0] = time.monotonic()
        subscribed.set()

    client.on_message, client.on_connect, client.on_subscribe = on_message, on_connect, on_subscribe
    try:
        client.connect(cfg.mqtt.host, cfg.mqtt.port, cfg.mqtt.keepalive_s)
    except OSError as exc:
        raise ConfigError(f"household sync: cannot reach the MQTT broker {cfg.mqtt.host}:{cfg.mqtt.port}: {exc}") from None
    client.loop_start()
    try:
        deadline = t0 + timeout
        if not subscribed.wait(max(0.0, deadline - time.monotonic())):
            raise ConfigError(f"household sync: the broker {cfg.mqtt.host}:{cfg.mqtt.port} did not answer "
                              f"within {timeout:.0f} s")
        while time.monotonic() < deadline and time.monotonic() - last[0] < QUIET_S:
            time.sleep(0.05)
        received = dict(messages)
        report.received = len(received)
        on_broker = merge(store, household, received, model_sha, report)
        for topic, doc in outgoing(store, household).items():
            if doc["updated"] > on_broker.get(topic, float("-inf")):
                client.publish(topic, household.seal(doc), qos=1, retain=True).wait_for_publish(timeout)
                report.published += 1
    finally:
        client.loop_stop()
        client.disconnect()
    report.seconds, report.time = round(time.monotonic() - t0, 3), time.time()
    store.set_setting(LAST_SYNC, report.to_dict())  # the page's Household panel
    return report


class SyncLoop(threading.Thread):
    """The daemon's household sync: a round at start and every `[household] sync_s`, on its own
    store connection; a failed round is logged and retried at the next one."""

    def __init__(self, cfg: Config, model_sha: str, stop: threading.Event) -> None:
        super().__init__(name="household-sync", daemon=True)
        Household(cfg)  # a missing key or broker fails the daemon's start, not a later round
        self.cfg, self.model_sha, self.stop = cfg, model_sha, stop

    def run(self) -> None:
        wait = 0.0
        while not self.stop.wait(wait):
            wait = self.cfg.household.sync_s
            try:
                with Store(self.cfg.store_path) as store:
                    report = sync(self.cfg, store, self.model_sha, timeout=min(10.0, wait))
            except (ConfigError, OSError, sqlite3.Error) as exc:
                log.warning("household sync failed (next try in %.0f s): %s", wait, exc)
                continue
            if report.merged or report.deleted or report.rejected:
                log.info("household sync: %s", report.to_dict())
