"""Home Assistant's MQTT discovery schema for the components the device announces, written down from
Home Assistant's own voluptuous schemas (homeassistant/components/mqtt: discovery.py TOPIC_MATCHER,
schemas.py MQTT_ENTITY_COMMON_SCHEMA / device / origin / availability, config.py MQTT_RO_SCHEMA,
binary_sensor.py and sensor.py PLATFORM_SCHEMA_MODERN). Home Assistant silently drops unknown keys;
this check refuses them, so a misspelt key is caught here instead of being ignored there."""

from __future__ import annotations

import re
from typing import Any

TOPIC_MATCHER = re.compile(r"(?P<component>\w+)/(?:(?P<node_id>[a-zA-Z0-9_-]+)/)?(?P<object_id>[a-zA-Z0-9_-]+)/config")

BINARY_SENSOR_CLASSES = {
    "battery", "battery_charging", "carbon_monoxide", "cold", "connectivity", "door", "garage_door", "gas", "heat",
    "light", "lock", "moisture", "motion", "moving", "occupancy", "opening", "plug", "power", "presence", "problem",
    "running", "safety", "smoke", "sound", "tamper", "update", "vibration", "window"}
ENTITY_CATEGORIES = {"config", "diagnostic"}


def _str(v: Any) -> bool:
    return isinstance(v, str)


def _topic(v: Any) -> bool:  # valid_subscribe_topic: non-empty, wildcards only as whole levels, no NUL
    if not isinstance(v, str) or not v or "\0" in v or len(v.encode()) > 65535:
        return False
    levels = v.split("/")
    return all(("+" not in lv or lv == "+") and ("#" not in lv or lv == "#") for lv in levels) and \
        ("#" not in v or levels.index("#") == len(levels) - 1)


def _template(v: Any) -> bool:
    return isinstance(v, str) and v.count("{{") == v.count("}}") and v.count("{%") == v.count("%}")


def _positive_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def _qos(v: Any) -> bool:
    return v in (0, 1, 2) and not isinstance(v, bool)


def _device(v: Any) -> bool:
    allowed = {"identifiers": lambda x: isinstance(x, list) and all(_str(i) for i in x), "connections": lambda x: (
        isinstance(x, list) and all(isinstance(c, list) and len(c) == 2 for c in x)), "manufacturer": _str,
        "model": _str, "model_id": _str, "name": _str, "hw_version": _str, "serial_number": _str, "sw_version": _str,
        "via_device": _str, "suggested_area": _str, "configuration_url": _str}
    return (isinstance(v, dict) and set(v) <= set(allowed) and all(allowed[k](x) for k, x in v.items())
            and bool(v.get("identifiers") or v.get("connections")))


def _origin(v: Any) -> bool:
    return isinstance(v, dict) and _str(v.get("name")) and set(v) <= {"name", "sw_version", "support_url"}


COMMON = {  # MQTT_ENTITY_COMMON_SCHEMA + availability + MQTT_RO_SCHEMA
    "availability_topic": _topic, "availability_template": _template, "payload_available": _str,
    "payload_not_available": _str, "availability_mode": lambda v: v in ("all", "any", "latest"),
    "device": _device, "entity_picture": _str, "origin": _origin, "enabled_by_default": lambda v: isinstance(v, bool),
    "entity_category": lambda v: v in ENTITY_CATEGORIES, "icon": lambda v: _str(v) and ":" in v,
    "json_attributes_topic": _topic, "json_attributes_template": _template, "object_id": _str, "unique_id": _str,
    "state_topic": _topic, "value_template": _template, "qos": _qos, "encoding": _str,
    "name": lambda v: v is None or _str(v), "force_update": lambda v: isinstance(v, bool),
    "expire_after": _positive_int}
PLATFORMS = {
    "binary_sensor": {**COMMON, "device_class": lambda v: v is None or v in BINARY_SENSOR_CLASSES,
                      "off_delay": _positive_int, "payload_on": _str, "payload_off": _str},
    "sensor": {**COMMON, "device_class": lambda v: v is None or _str(v), "unit_of_measurement": _str,
               "state_class": lambda v: v in (None, "measurement", "total", "total_increasing"),
               "suggested_display_precision": _positive_int, "options": lambda v: isinstance(v, list)},
}
REQUIRED = {"state_topic"}


def problems(topic: str, payload: dict[str, Any], discovery_prefix: str = "homeassistant") -> list[str]:
    """Why Home Assistant would refuse (or mis-handle) this discovery message; [] if it accepts it."""
    if not topic.startswith(discovery_prefix + "/"):
        return [f"{topic}: not under {discovery_prefix}/"]
    m = TOPIC_MATCHER.fullmatch(topic[len(discovery_prefix) + 1:])
    if not m:
        return [f"{topic}: does not match Home Assistant's discovery topic pattern"]
    component = m["component"]
    if component not in PLATFORMS:
        return [f"{topic}: component {component} is not checked here"]
    schema = PLATFORMS[component]
    out = [f"{topic}: unknown key {k!r}" for k in sorted(set(payload) - set(schema))]
    out += [f"{topic}: missing {k!r}" for k in sorted(REQUIRED - set(payload))]
    out += [f"{topic}: bad value for {k!r}: {v!r}" for k, v in payload.items() if k in schema and not schema[k](v)]
    if "device" in payload and "unique_id" not in payload:
        out.append(f"{topic}: a device needs a unique_id")  # HA logs an error and ignores the device
    return out
