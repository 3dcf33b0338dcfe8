"""Threshold policy names, in one place: the config check, the CLI help, the bundle lookup and the
status page's policy picker all read `POLICIES`.

A policy is one of these names or an explicit number, which is used as the threshold itself. With a
calibrated bundle (schema 2) 'farP' is the chance that a stranger's attempt is accepted as any of
the people enrolled (`device.calibration`); a schema-1 bundle maps 'far1' and 'eer' to thresholds of
its own.
"""

from __future__ import annotations

POLICIES: dict[str, str] = {
    "far0.1": "0.1 % of strangers' attempts accepted as someone",
    "far0.5": "0.5 % of strangers' attempts accepted as someone",
    "far1": "1 % of strangers' attempts accepted as someone",
    "far2": "2 % of strangers' attempts accepted as someone",
    "far5": "5 % of strangers' attempts accepted as someone",
    "eer": "equal error rate",
}
DEFAULT_POLICY = "far1"
# Enrollment (device/enroll.py): a sample scoring below this policy's threshold against the samples
# taken so far is refused as "a different speaker?". A strict one: a refused sample costs one more
# recording, an accepted one from somebody else spoils the profile for good.
CONSISTENCY_POLICY = "far1"
# Profile refresh (device/refresh.py, config [refresh] policy): an accept must also reach this
# stricter threshold before its utterance may move the profile.
REFRESH_POLICY = "far0.1"


def describe() -> str:
    """The policy names, quoted, "or a number": for help texts and error messages."""
    names = [f"'{p}'" for p in POLICIES]
    return (", ".join(names[:-1]) + f", {names[-1]}" if len(names) > 1 else names[0]) + " or a number"


def normalize_policy(value: object) -> str | None:
    """The policy as stored and passed around (a known name, or a number as text); None if invalid."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return str(float(value))
    if isinstance(value, str):
        if value in POLICIES:
            return value
        try:
            float(value)
        except ValueError:
            return None
        return value
    return None
