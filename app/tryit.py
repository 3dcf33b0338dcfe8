"""'Try it': decide on an uploaded recording with the device's own Recognizer (device/recognizer.py),
so the threshold policy (the store's 'policy' setting), scoring and decision rule are exactly the
device's.

Two audiences, because exact scores and the closest enrolled name are free help for tuning an
impersonation:
- anyone on the LAN gets accept/unsure/reject and nothing more, through a persistent throttle shared by
  all anonymous visitors (`ANONYMOUS`, device/throttle.py: every answer counts, not only rejects,
  so a genuine recording cannot reset it), and their verify attempts never count toward the
  speaker's lockout (a visitor must not be able to lock the owner out);
- with the admin password unlocked, the score, threshold, margin and names are shown, and a
  rejected verification counts toward the claimed speaker's lockout like `python -m device verify`.
"""

from __future__ import annotations

import streamlit as st

from app.admin_panel import is_admin
from app.resources import load_bundle
from app.tables import ICONS
from device.audio import AudioError, load_audio
from device.bundle import BundleError
from device.config import Config
from device.lockout import LockedOut
from device.recognizer import RecognitionError, Recognizer, Result
from device.runtime import RuntimeMissing
from device.store import Store
from device.throttle import Throttle

PROBLEMS = (AudioError, BundleError, LockedOut, RecognitionError, RuntimeMissing)
ANONYMOUS = Throttle("tryit_anonymous", forget_s=3600.0)  # like the admin login; forgotten after a quiet hour


def try_it(cfg: Config, store: Store) -> None:
    st.header("Try it")
    admin = is_admin()
    if not admin:
        st.caption("Anonymous tries get accept, unsure or reject only and are throttled; scores and names are shown "
                   "to the admin (unlock below).")
    names = [s.name for s in store.list_speakers()]
    mode = st.radio("Question", ["identify", "verify"], horizontal=True, key="try_mode",
                    format_func=lambda m: "Who is speaking?" if m == "identify" else "Is this the claimed speaker?")
    claim = st.selectbox("Claimed speaker", names, key="try_claim") if mode == "verify" else None
    upload = st.file_uploader("A recording (WAV or FLAC)", type=["wav", "flac"], key="try_file")
    if upload is None or not st.button("Decide", key="try_go", type="primary"):
        return
    if mode == "verify" and not claim:
        st.error("nobody is enrolled to verify against")
        return
    if not admin and (wait := ANONYMOUS.remaining(store)) > 0:
        st.error(f"Too many tries: the next one is answered in {wait:.0f} s (or unlock the admin actions).")
        return
    try:
        audio = load_audio(upload.getvalue(), name=upload.name)
        recognizer = Recognizer(cfg, store, bundle=load_bundle(cfg.model))
        with st.spinner("Listening to it…"):
            result = recognizer.recognize(audio, [claim] if claim else [], label=upload.name, attempt=admin,
                                          learn=False)
    except PROBLEMS as exc:
        st.error(str(exc))
        return
    if admin:
        _show_all(result)
    else:
        wait = ANONYMOUS.record(store)
        _show_decision(result, wait)


UNSURE_HINT = " (close: a longer recording may settle it)"


def _box(label: str, text: str) -> None:
    """Accept green, unsure and reject as warnings with the events table's icons."""
    (st.success if label == "accept" else st.warning)(text + (UNSURE_HINT if label == "unsure" else ""),
                                                      icon=ICONS[label])


def _show_decision(result: Result, wait: float) -> None:
    """Accept, unsure or reject, and how much speech there was: no score, no name."""
    d = result.decision
    if result.kind == "verify":
        text = f"**{d.label.upper()}** — {'this is' if d.accepted else 'not recognised as'} the claimed speaker"
    else:
        text = f"**{d.label.upper()}** — {'an enrolled speaker' if d.accepted else 'not recognised'}"
    _box(d.label, text)
    st.write(f"{result.speech_seconds:.1f} s of speech in {result.seconds:.1f} s"
             + (f"; the next try is answered in {wait:.0f} s" if wait else ""))


def _show_all(result: Result) -> None:
    d = result.decision
    who = d.speaker or "nobody"
    text = (f"**{d.label.upper()}** — {who}" if d.accepted or result.kind == "verify"
            else f"**{d.label.upper()}** — unknown (closest {who})")
    _box(d.label, text)
    snr = "–" if result.snr_db is None else f"{result.snr_db:.0f} dB"
    st.write(f"score {d.score:+.3f} against threshold {d.threshold:+.3f} (margin {d.margin:+.3f}); "
             f"{result.speech_seconds:.1f} s of speech in {result.seconds:.1f} s, SNR {snr}")
