"""The read-only part of the page, re-run every two seconds as a fragment: health, live events,
today's counts, enrolled speakers (with any verification lockout, device/lockout.py) and the last
utterance's MFCC heatmap.

Scores (the events' score, threshold and margin columns, the score timeline) and the closest name
of an identification that was not accepted (rejected or unsure) are shown only once the admin
password is unlocked: together with the microphone they would be the same score oracle Try-it no
longer is (app/tryit.py). Everyone sees each decision's state (accept, UNSURE, reject) and how many
utterances of its session it rests on; a session is one event, updated in place as it goes on.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

import streamlit as st

from app.admin_panel import is_admin
from app.charts import mfcc_heatmap, score_timeline
from app.health import cpu_temperature, daemon_health, duration, load_average
from app.household import household_panel
from app.integrations import integrations_panel
from app.resources import load_bundle, open_store
from app.tables import events_table, public, speakers_table, todays_counts
from device.bundle import Bundle, BundleError
from device.config import Config
from device.lockout import locked_speakers
from device.store import LAST_SYNC, Event, Store

EVENTS_SHOWN = 20
EVENTS_COUNTED = 500  # today's counts and "last seen" come from this many newest events


@st.fragment(run_every="2s")
def live(cfg: Config) -> None:
    with open_store(cfg) as store:
        if store is None:
            st.info(f"No store at {cfg.store_path} yet: enroll someone (`python -m device enroll NAME`) "
                    "or start the daemon (`python -m device run`).")
            return
        status = store.status()
        health(cfg, store, status)
        integrations_panel(status, daemon_health(status, cfg.heartbeat_s, time.time()).up)
        household_panel(store.get_setting(LAST_SYNC))
        events = store.recent_events(limit=EVENTS_COUNTED)
        admin = is_admin()
        live_events(events if admin else public(events), store.count_events(), scores=admin)
        st.subheader("Enrolled speakers")
        speakers = store.list_speakers()
        if speakers:
            st.dataframe(speakers_table(speakers, events), hide_index=True, width="stretch")
        else:
            st.write("Nobody is enrolled yet.")
        for name, left in locked_speakers(store).items():
            st.warning(f"Verification of {name} is locked out after repeated failures: {duration(left)} left.")


def health(cfg: Config, store: Store, status: dict[str, Any]) -> None:
    st.subheader("Health")
    state = daemon_health(status, cfg.heartbeat_s, time.time())
    try:
        bundle: Bundle | None = load_bundle(cfg.model)
    except (BundleError, OSError) as exc:
        bundle = None
        st.error(f"model: {exc}")
    cols = st.columns(4)
    cols[0].metric("Daemon", state.state, help=f"heartbeat {state.heartbeat_age:.0f} s ago"
                   if state.heartbeat_age is not None else "no heartbeat recorded")
    cols[1].metric("Uptime", duration(state.uptime_s))
    cols[2].metric("Model", bundle.name if bundle else status.get("model", "–"))
    cols[3].metric("Quantization", bundle.quantization if bundle else status.get("quantization", "–"))
    policy = str(status["policy"]) if state.up and "policy" in status else str(store.get_setting("policy", cfg.policy))
    temp, load = cpu_temperature(), load_average()
    facts = {
        "Model size": f"{bundle.tflite_path.stat().st_size / 1e6:.2f} MB" if bundle else "–",
        "Runtime": status.get("runtime", "–"),
        "Scoring": bundle.scoring if bundle else "–",
        "Threshold in force": _threshold_text(bundle, policy, len(store.profiles(bundle.meta["sha256"])) if bundle else 0),
        "Audio device": status.get("audio_device", status.get("source", "–")),
        "Mode": status.get("mode", "–"),
        "CPU temperature": f"{temp:.1f} °C" if temp is not None else "not readable",
        "Load (1/5/15 min)": " / ".join(f"{x:.2f}" for x in load) if load else "not readable",
    }
    st.table({"": list(facts), "value": [str(v) for v in facts.values()]})


def _threshold_text(bundle: Bundle | None, policy: str, enrolled: int) -> str:
    """The threshold in force for the people enrolled, with the rates its calibration measured."""
    if bundle is None:
        return f"policy {policy}"
    try:
        point = bundle.operating_point(policy, max(enrolled, 1))
    except BundleError as exc:
        return f"policy {policy}: {exc}"
    text = f"policy {policy} → {point['threshold']:+.3f} with {enrolled} enrolled"
    expected = point["expected"]
    if expected is None:
        return text + " (this model has no score calibration)"
    return (text + f"; expected: a stranger accepted as anyone {100 * expected['stranger_accepted']:.1f} %, "
            f"a genuine attempt rejected {100 * expected['false_reject']:.1f} %")


def live_events(events: list[Event], stored: int, scores: bool = True) -> None:
    st.subheader("Live events")
    if not events:
        st.write("No decisions recorded yet.")
        return
    newest = dt.datetime.fromtimestamp(events[0].time).strftime("%H:%M:%S")
    st.caption(f"{stored} decisions stored (a conversation is one, updated as it goes on), newest at {newest}; "
               "refreshes every 2 s"
               + ("" if scores else "; scores are shown to the admin (unlock below)"))
    st.dataframe(events_table(events[:EVENTS_SHOWN], scores), hide_index=True, width="stretch")
    left, right = st.columns([3, 2])
    with left:
        if scores:
            st.caption("Scores over time; dashed line: the threshold")
            st.altair_chart(score_timeline(events[:200]), width="stretch")
    with right:
        st.caption("Accepted / unsure / rejected today")
        st.dataframe(todays_counts(events, time.time()), hide_index=True, width="stretch")
    last = next((e for e in events if e.mfcc is not None and e.mfcc.size), None)
    if last is not None:
        st.caption(f"MFCCs of the last utterance ({last.seconds:.1f} s, {last.speaker or 'unknown'})")
        st.altair_chart(mfcc_heatmap(last.mfcc), width="stretch")
