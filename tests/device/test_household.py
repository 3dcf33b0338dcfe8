"""One household, two devices, one real mosquitto on loopback: profiles shared encrypted through the
broker with the real CLI (`household init`, `enroll`, `profiles sync|delete`, `identify`), deletions
that propagate, tampered and foreign-key messages that are refused, and each person's room sensor
in Home Assistant's discovery schema. Voices: the demo's never-heard people."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from device.config import Config
from device.mqtt import Topics, discovery_configs
from tests.device.broker import Broker, Listener, retained
from tests.device.ha_discovery import problems
from tests.helpers import DEVICE_PY, REPO, run

SHIPPED = REPO / "models" / "default"
CLIPS = REPO / "device" / "demo_clips"
PROFILES = "speakerid/household/profiles/+"


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    b = Broker(tmp_path / "broker").start()
    yield b
    b.stop()


def device_config(tmp_path: Path, name: str, port: int, key: Path, room: str) -> Path:
    toml = tmp_path / f"{name}.toml"
    toml.write_text(f'model = "{SHIPPED}"\nstore = "{tmp_path / name}.db"\npolicy = "far1"\n'
                    f'[mqtt]\nhost = "127.0.0.1"\nport = {port}\ndevice_id = "{name}"\n'
                    f'[household]\nkey_file = "{key}"\nroom = "{room}"\n')
    return toml


def device(*args: object) -> dict:
    proc = run([DEVICE_PY, "-m", "device", *map(str, args), "--json"])
    assert proc.returncode in (0, 1), proc.stderr[-2000:]
    return json.loads(proc.stdout.splitlines()[-1])


def test_enrol_on_one_device_be_recognised_on_the_other(broker: Broker, tmp_path: Path) -> None:
    key = tmp_path / "household.key"
    assert device("household", "init", "--key-file", key)["key_file"] == str(key)
    assert key.stat().st_mode & 0o777 == 0o600
    again = run([DEVICE_PY, "-m", "device", "household", "init", "--key-file", key])
    assert again.returncode == 2 and "never overwritten" in again.stderr
    kitchen = device_config(tmp_path, "kitchen", broker.port, key, "kitchen")
    living = device_config(tmp_path, "living", broker.port, key, "living room")

    device("enroll", "alan", "--files", *sorted(CLIPS.glob("alan-enroll-*")), "--config", kitchen)
    device("enroll", "lyubov", "--files", *sorted(CLIPS.glob("lyubov-enroll-*")), "--config", kitchen)
    first = device("profiles", "sync", "--config", kitchen)
    assert (first["published"], first["merged"], first["rejected"]) == (2, [], 0)
    on_broker = retained(broker.port, PROFILES)
    assert len(on_broker) == 2 and all(b"alan" not in p and b"lyubov" not in p for p in on_broker.values())
    assert not any("alan" in t or "lyubov" in t for t in on_broker)  # names are hashed in topics too

    second = device("profiles", "sync", "--config", living)
    assert sorted(second["merged"]) == ["alan", "lyubov"] and second["published"] == 0
    assert second["devices"] == {"kitchen": ["alan", "lyubov"]}  # what the page's Household panel lists
    heard = device("identify", "--file", CLIPS / "alan-test-1.flac", "--config", living)
    assert (heard["decision"], heard["speaker"]) == ("accept", "alan")
    same = device("identify", "--file", CLIPS / "alan-test-1.flac", "--config", kitchen)
    assert heard["score"] == pytest.approx(same["score"], abs=1e-4)  # the very same profile

    # a deletion on the kitchen device reaches the living room; replaying the old message cannot undo it
    old_alan = {t: p for t, p in on_broker.items() if t in retained(broker.port, PROFILES)}
    device("profiles", "delete", "alan", "--config", kitchen)
    assert device("profiles", "sync", "--config", kitchen)["published"] == 1  # the tombstone
    assert device("profiles", "sync", "--config", living)["deleted"] == ["alan"]
    replay = Listener(broker.port, [], client_id="replayer")
    for topic, payload in old_alan.items():
        replay.client.publish(topic, payload, qos=1, retain=True).wait_for_publish(5)
    replay.close()
    assert device("profiles", "sync", "--config", living)["merged"] == []
    names = [p["name"] for p in device("profiles", "list", "--config", living)]
    assert names == ["lyubov"]


def test_tampered_and_foreign_messages_are_refused(broker: Broker, tmp_path: Path) -> None:
    key, other_key = tmp_path / "a.key", tmp_path / "b.key"
    device("household", "init", "--key-file", key)
    device("household", "init", "--key-file", other_key)
    ours = device_config(tmp_path, "ours", broker.port, key, "hall")
    theirs = device_config(tmp_path, "theirs", broker.port, other_key, "street")
    device("enroll", "mikhail", "--files", *sorted(CLIPS.glob("mikhail-enroll-*")), "--config", ours)
    device("profiles", "sync", "--config", ours)

    foreign = device("profiles", "sync", "--config", theirs)  # a device with another key learns nothing
    assert (foreign["merged"], foreign["rejected"]) == ([], 1)
    assert device("profiles", "list", "--config", theirs) == []

    (topic, payload), = retained(broker.port, PROFILES).items()
    forged = bytearray(payload)
    forged[len(forged) // 2] ^= 0x01  # one flipped bit of the ciphertext
    writer = Listener(broker.port, [], client_id="forger")
    writer.client.publish(topic, bytes(forged), qos=1, retain=True).wait_for_publish(5)
    writer.close()
    fresh = device_config(tmp_path, "fresh", broker.port, key, "attic")
    tampered = device("profiles", "sync", "--config", fresh)
    assert (tampered["merged"], tampered["rejected"]) == ([], 1)


def test_each_person_has_a_room_sensor_in_the_discovery_schema() -> None:
    topics = Topics("speakerid", "kitchen")
    configs = discovery_configs(topics, ["alan", "Anna Maria"], "homeassistant", 120, "default", room_expire_s=1800)
    rooms = {t: c for t, c in configs.items() if "/speakerid_household/" in t}
    assert sorted(c["name"] for c in rooms.values()) == ["Anna Maria room", "alan room"]
    for topic, config in rooms.items():
        assert problems(topic, config) == []
        assert config["state_topic"].startswith("speakerid/household/room/") and config["expire_after"] == 1800
    assert not any("/speakerid_household/" in t for t in discovery_configs(topics, ["alan"], "homeassistant", 120))


def test_decisions_carry_the_room_and_set_the_persons_room(broker: Broker, tmp_path: Path) -> None:
    key = tmp_path / "k"
    device("household", "init", "--key-file", key)
    kitchen = device_config(tmp_path, "kitchen", broker.port, key, "kitchen")
    device("enroll", "alan", "--files", *sorted(CLIPS.glob("alan-enroll-*")), "--config", kitchen)
    listener = Listener(broker.port, ["speakerid/kitchen/decision"], client_id="t-room")
    decided = device("identify", "--file", CLIPS / "alan-test-1.flac", "--config", kitchen)
    assert decided["decision"] == "accept"
    listener.wait(lambda: listener.on("speakerid/kitchen/decision"), what="the decision")
    message = json.loads(listener.on("speakerid/kitchen/decision")[0].payload)
    assert (message["room"], message["speaker"]) == ("kitchen", "alan")
    listener.close()
    assert retained(broker.port, "speakerid/household/room/+") == {"speakerid/household/room/alan": b"kitchen"}
    assert Config.load(kitchen).household.room == "kitchen"
