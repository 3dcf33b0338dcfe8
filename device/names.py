"""The speaker-name policy, enforced in one place (`check_name`) for the CLI, the store and the page.

A name is 1-64 printable characters (letters of any script, digits, spaces inside, punctuation,
quotes, emoji), with no path separator, no control or format character and no leading or trailing
whitespace. Names reach SQL only as bound parameters, so quotes and SQL text are just text; they
are refused only where they could reach a path (`/`, `\\`, `.`, `..`) or fool a person reading a
terminal or the status page (control and bidi characters).
"""

from __future__ import annotations

MAX_NAME_LENGTH = 64
_SEPARATORS = ("/", "\\")


class SpeakerNameError(ValueError):
    """A speaker name outside the policy; the message says which rule it breaks."""


def check_name(name: object) -> str:
    """Return `name` unchanged if it follows the policy, else raise SpeakerNameError."""
    if not isinstance(name, str):
        raise SpeakerNameError(f"speaker name must be text, got {type(name).__name__}")
    if not name:
        raise SpeakerNameError("speaker name is empty")
    shown = repr(name[:20] + ("…" if len(name) > 20 else ""))
    if len(name) > MAX_NAME_LENGTH:
        raise SpeakerNameError(f"speaker name {shown} has {len(name)} characters; the limit is {MAX_NAME_LENGTH}")
    if name != name.strip():
        raise SpeakerNameError(f"speaker name {shown} starts or ends with whitespace")
    if any(sep in name for sep in _SEPARATORS) or name in (".", ".."):
        raise SpeakerNameError(f"speaker name {shown} contains a path separator or is '.'/'..'")
    bad = next((c for c in name if not c.isprintable()), None)  # controls, format (bidi), separators but space
    if bad is not None:
        raise SpeakerNameError(f"speaker name {shown} contains the non-printable character U+{ord(bad):04X}")
    return name
