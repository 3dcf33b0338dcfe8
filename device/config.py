"""The device's TOML configuration (read with tomllib), validated strictly.

A typo in a key or a wrong type is an error naming the file and the key: a silently ignored
`agressiveness = 3` would leave a daemon running with settings nobody asked for. CLI flags are
applied on top with `Config.override`.
"""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from device.policies import DEFAULT_POLICY, REFRESH_POLICY, describe, normalize_policy

DEFAULT_STORE = "~/.local/share/speakerid/store.db"
DEFAULT_MODEL = "models/default"


class ConfigError(ValueError):
    """An unusable configuration; the message names the file and the key."""


@dataclass
class AudioConfig:
    device: str = ""  # a PortAudio device name (substring) or index; "" = the system default
    block_ms: int = 30
    queue_seconds: float = 10.0  # the ring buffer between the audio callback and the recognizer
    reopen_backoff_s: float = 1.0  # first wait before reopening a failed stream (doubles, capped)
    stall_seconds: float = 5.0  # no audio for this long means the stream is dead


@dataclass
class VadConfig:
    aggressiveness: int = 2  # webrtcvad mode 0 (lenient) .. 3 (strict)
    padding_ms: int = 300  # speech kept before the onset and hangover after the end
    min_utterance_s: float = 0.8
    max_utterance_s: float = 15.0

    def __post_init__(self) -> None:
        if self.aggressiveness not in (0, 1, 2, 3):
            raise ConfigError(f"vad.aggressiveness must be 0..3, got {self.aggressiveness}")
        if not 30 <= self.padding_ms <= 3000:
            raise ConfigError(f"vad.padding_ms must be 30..3000, got {self.padding_ms}")
        if not 0 < self.min_utterance_s < self.max_utterance_s:
            raise ConfigError("vad.min_utterance_s must be positive and below vad.max_utterance_s")


@dataclass
class EnrollConfig:
    target_seconds: float = 12.0  # net speech wanted for a complete profile
    min_speech_s: float = 1.0  # a sample with less speech is "too short"
    min_snr_db: float = 12.0  # below this a sample is "too noisy"
    clip_fraction: float = 0.002  # fraction of samples at full scale that counts as clipped
    consistency: float | None = None  # score vs the running mean below this -> "different speaker?";
    # None = the bundle's threshold for device.policies.CONSISTENCY_POLICY (1 % false accepts)


@dataclass
class LockoutConfig:
    """Verification lockout (device/lockout.py): refuse a claimed speaker for `cooldown_s` after
    `max_failures` rejected verifications within `window_s`."""

    max_failures: int = 5
    window_s: float = 300.0
    cooldown_s: float = 900.0

    def __post_init__(self) -> None:
        if self.max_failures < 1 or self.window_s <= 0 or self.cooldown_s < 0:
            raise ConfigError("lockout.max_failures must be at least 1, window_s positive, cooldown_s not negative")


@dataclass
class SessionConfig:
    """Decisions from several utterances (device/session.py) and the "unsure" answer."""

    gap_s: float = 8.0  # a silence longer than this ends the session (the daemon; the CLI's --session has none)
    unsure_far: float = 0.2  # "unsure" from the score a stranger reaches with this chance (household) up to accepting
    split_on_change: bool = True  # a new speaker (bundle's same-speaker cosine) starts a new session
    # an utterance joins the open session only if, alone, it scores at least what a stranger reaches with
    # this chance (household) against the session's person: a stranger never rides on someone's evidence
    join_far: float = 0.2

    def __post_init__(self) -> None:
        if self.gap_s <= 0:
            raise ConfigError(f"session.gap_s must be positive, got {self.gap_s}")
        if not 0 <= self.unsure_far < 1:
            raise ConfigError(f"session.unsure_far must be in [0, 1) (0 = no unsure band), got {self.unsure_far}")
        if not 0 <= self.join_far < 1:
            raise ConfigError(f"session.join_far must be in [0, 1) (0 = no such check), got {self.join_far}")


@dataclass
class RefreshConfig:
    """Profile refresh after high-confidence accepts (device/refresh.py). Off until it has been
    measured in a real home: a refresh changes what the device accepts from then on."""

    enabled: bool = False
    policy: str = REFRESH_POLICY  # the threshold a score must also reach to refresh; never below the accept one
    max_recent: int = 8  # refresh vectors in a profile beside its enrolment samples; older ones are evicted
    # a refresh is refused when the profile it makes has cosine < this with the enrolment-only profile
    min_similarity: float = 0.9

    def __post_init__(self) -> None:
        if self.max_recent < 1:
            raise ConfigError(f"refresh.max_recent must be at least 1, got {self.max_recent}")
        if not 0 < self.min_similarity <= 1:
            raise ConfigError(f"refresh.min_similarity must be in (0, 1], got {self.min_similarity}")


@dataclass
class RoomConfig:
    """Room adaptation (device/room.py): centre embeddings on what this device hears, for bundles
    calibrated for it (others are never centred). Off by default: on the development set's
    calibration half it helped noisy rooms but not clean speech or channels (docs/GENERALISATION.md)."""

    enabled: bool = False


_TOPIC_BAD = ("+", "#", "\0")
_ID_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-"


def _check_topic(key: str, value: str) -> None:
    if not value or value.startswith("/") or value.endswith("/") or any(c in value for c in _TOPIC_BAD):
        raise ConfigError(f"{key} must be a non-empty MQTT topic without wildcards or a leading/trailing '/', "
                          f"got {value!r}")


@dataclass
class MqttConfig:
    """Decisions and daemon health published over MQTT (device/mqtt.py); off while `host` is empty."""

    host: str = ""
    port: int = 1883
    username: str = ""
    password_file: str = ""  # a file only its owner may read (0600); its first line is the password
    tls: bool = False
    ca_file: str = ""  # with tls: the CA to trust; "" = the system's
    topic_prefix: str = "speakerid"
    device_id: str = ""  # "" = the hostname (letters, digits, '_' and '-' kept)
    discovery: bool = True  # Home Assistant MQTT discovery
    discovery_prefix: str = "homeassistant"
    presence_s: int = 120  # a person's presence sensor turns off this long after their last accept
    queue: int = 200  # decisions held while the broker is away; beyond that the oldest are dropped
    keepalive_s: int = 30
    reconnect_max_s: int = 60  # reconnect back-off doubles from 1 s up to this

    def __post_init__(self) -> None:
        if not 1 <= self.port <= 65535:
            raise ConfigError(f"mqtt.port must be 1..65535, got {self.port}")
        _check_topic("mqtt.topic_prefix", self.topic_prefix)
        _check_topic("mqtt.discovery_prefix", self.discovery_prefix)
        if self.device_id and (len(self.device_id) > 64 or any(c not in _ID_CHARS for c in self.device_id)):
            raise ConfigError(f"mqtt.device_id may hold only letters, digits, '_' and '-' (at most 64), "
                              f"got {self.device_id!r}")
        if self.queue < 1 or self.presence_s < 1 or self.keepalive_s < 5 or self.reconnect_max_s < 1:
            raise ConfigError("mqtt.queue and mqtt.presence_s must be at least 1, keepalive_s at least 5, "
                              "reconnect_max_s at least 1")


@dataclass
class WebhookConfig:
    """Decisions POSTed as signed JSON (device/webhook.py); off while `url` is empty."""

    url: str = ""
    secret_file: str = ""  # required with a url: a 0600 file holding the HMAC-SHA256 key
    timeout_s: float = 5.0
    retries: int = 5  # further attempts after a failed one, `backoff_s` apart, doubling
    backoff_s: float = 1.0
    queue: int = 200

    def __post_init__(self) -> None:
        if self.url and not self.url.startswith(("http://", "https://")):
            raise ConfigError(f"webhook.url must start with http:// or https://, got {self.url!r}")
        if self.url and not self.secret_file:
            raise ConfigError("webhook.secret_file is required with webhook.url: the receiver needs the "
                              "signature to tell the device's posts from anyone else's")
        if self.timeout_s <= 0 or self.backoff_s <= 0 or self.retries < 0 or self.queue < 1:
            raise ConfigError("webhook.timeout_s and backoff_s must be positive, retries not negative, queue at least 1")


@dataclass
class HouseholdConfig:
    """Profiles shared with the household's other devices through the MQTT broker (device/household.py)."""

    key_file: str = ""  # the household key (0600; python -m device household init); "" = nothing is shared
    room: str = ""  # where this device is: decisions carry it and each person's room sensor shows it
    room_expire_s: int = 1800  # a person's room sensor turns unknown this long after their last accept anywhere
    sync_s: float = 60.0  # the daemon's sync round interval

    def __post_init__(self) -> None:
        if self.sync_s <= 0 or self.room_expire_s <= 0:
            raise ConfigError("household.sync_s and household.room_expire_s must be positive")


UNVERIFIED = ("empty", "forward")


@dataclass
class AssistConfig:
    """The Wyoming speech-to-text proxy for Home Assistant's Assist pipeline (device/assist.py)."""

    listen: str = "tcp://0.0.0.0:10350"  # where Home Assistant connects (its Wyoming integration)
    upstream: str = ""  # the real ASR service, e.g. tcp://127.0.0.1:10300 (wyoming-faster-whisper)
    tag: bool = False  # prefix the transcript with "[name] " (for LLM agents)
    unverified: str = "empty"  # nobody enrolled accepted: "empty" transcript, or "forward" it untagged
    keep_others: bool = False  # forward the speech of other voices (the TV) too, instead of cutting it
    timeout_s: float = 15.0  # connecting to the upstream, and each of its answers

    def __post_init__(self) -> None:
        if self.unverified not in UNVERIFIED:
            raise ConfigError(f"assist.unverified must be one of {', '.join(UNVERIFIED)}, got {self.unverified!r}")
        if self.timeout_s <= 0:
            raise ConfigError(f"assist.timeout_s must be positive, got {self.timeout_s}")
        for key in ("listen", "upstream"):
            uri = getattr(self, key)
            if uri and not uri.startswith(("tcp://", "unix://")):
                raise ConfigError(f"assist.{key} must be a tcp://HOST:PORT or unix://PATH URI, got {uri!r}")


@dataclass
class Config:
    model: str = DEFAULT_MODEL
    store: str = DEFAULT_STORE
    policy: str = DEFAULT_POLICY  # a name in device.policies.POLICIES or a number
    claimed: list[str] = field(default_factory=list)  # daemon: verify against these instead of identifying
    event_retention: int = 10000  # newest events kept in the store
    heartbeat_s: float = 5.0
    threads: int = 1
    audio: AudioConfig = field(default_factory=AudioConfig)
    vad: VadConfig = field(default_factory=VadConfig)
    enroll: EnrollConfig = field(default_factory=EnrollConfig)
    lockout: LockoutConfig = field(default_factory=LockoutConfig)
    session: SessionConfig = field(default_factory=SessionConfig)
    room: RoomConfig = field(default_factory=RoomConfig)
    mqtt: MqttConfig = field(default_factory=MqttConfig)
    webhook: WebhookConfig = field(default_factory=WebhookConfig)
    refresh: RefreshConfig = field(default_factory=RefreshConfig)
    assist: AssistConfig = field(default_factory=AssistConfig)
    household: HouseholdConfig = field(default_factory=HouseholdConfig)

    def __post_init__(self) -> None:
        if self.event_retention < 1 or self.threads < 1 or self.heartbeat_s <= 0:
            raise ConfigError("event_retention and threads must be at least 1, heartbeat_s positive")

    @property
    def store_path(self) -> Path:
        return Path(self.store).expanduser()

    @classmethod
    def load(cls, path: str | Path | None) -> Config:
        """Defaults, or the TOML file at `path` laid over them."""
        if path is None:
            return cls()
        p = Path(path)
        try:
            data = tomllib.loads(p.read_text())
        except FileNotFoundError:
            raise ConfigError(f"{p}: no such config file") from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{p}: not valid TOML ({exc})") from None
        try:
            return _build(cls, data, "")
        except ConfigError as exc:
            raise ConfigError(f"{p}: {exc}") from None

    def override(self, **values: Any) -> Config:
        """A copy with top-level or dotted ('vad.aggressiveness') keys replaced; None values are skipped."""
        data = dataclasses.asdict(self)
        for key, value in values.items():
            if value is None:
                continue
            *parents, leaf = key.split(".")
            target = data
            for part in parents:
                target = target[part]
            target[leaf] = value
        return _build(Config, data, "")


def _build(cls: type, data: dict[str, Any], prefix: str) -> Any:
    if not isinstance(data, dict):
        raise ConfigError(f"{prefix.rstrip('.') or 'config'} must be a table")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(f"unknown key(s) {', '.join(prefix + k for k in unknown)} (known: {', '.join(sorted(fields))})")
    defaults = cls()
    return cls(**{name: _check(prefix + name, value, getattr(defaults, name)) for name, value in data.items()})


def _check(key: str, value: Any, default: Any) -> Any:
    if dataclasses.is_dataclass(default):
        return _build(type(default), value, key + ".")
    if key in ("policy", "refresh.policy"):
        return _policy(key, value)
    if key == "audio.device" and isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if key == "enroll.consistency" and value is None:
        return None
    expected: tuple[type, ...]
    if isinstance(default, bool):
        expected = (bool,)
    elif isinstance(default, float) or key == "enroll.consistency":
        expected = (float, int)
    else:
        expected = (type(default),)
    if isinstance(value, bool) and bool not in expected or not isinstance(value, expected):
        raise ConfigError(f"{key} must be {expected[0].__name__}, got {type(value).__name__} {value!r}")
    if isinstance(default, list) and not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{key} must be a list of strings")
    return float(value) if float in expected else value


def _policy(key: str, value: Any) -> str:
    policy = normalize_policy(value)
    if policy is None:
        raise ConfigError(f"{key} must be {describe()}, got {value!r}")
    return policy
