"""'Try it': decide on an uploaded recording with the daemon's own Recognizer, so the threshold
policy (the store's 'policy' setting), scoring and decision rule are exactly the device's."""

from __future__ import annotations

import streamlit as st

from device.audio import AudioError, load_audio
from device.bundle import BundleError
from device.config import Config
from device.daemon import RecognitionError, Recognizer
from device.runtime import RuntimeMissing
from device.store import Store

PROBLEMS = (AudioError, BundleError, RecognitionError, RuntimeMissing)


def try_it(cfg: Config, store: Store) -> None:
    st.header("Try it")
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
    try:
        audio = load_audio(upload.getvalue(), name=upload.name)
        with st.spinner("Listening to it…"):
            result = Recognizer(cfg, store).recognize(audio, [claim] if claim else [], label=upload.name)
    except PROBLEMS as exc:
        st.error(str(exc))
        return
    d = result.decision
    who = d.speaker or "nobody"
    text = (f"**{d.label.upper()}** — {who}" if d.accepted or mode == "verify" else f"**REJECT** — unknown (closest {who})")
    (st.success if d.accepted else st.warning)(text)
    snr = "–" if result.snr_db is None else f"{result.snr_db:.0f} dB"
    st.write(f"score {d.score:+.3f} against threshold {d.threshold:+.3f} (margin {d.margin:+.3f}); "
             f"{result.speech_seconds:.1f} s of speech in {result.seconds:.1f} s, SNR {snr}")
