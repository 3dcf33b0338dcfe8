"""The admin section: unlock with the device's admin password (device/admin.py), then enroll from
uploaded files through the CLI's own enrollment loop (device/enroll.py's `enroll_samples`), delete
a speaker, undo or hold profile refreshes (device/refresh.py), change the threshold policy, export
and import profiles (device/profile_export.py).

The unlocked state lives in this browser session only (`is_admin`); it also shows Try-it's scores
and names (app/tryit.py).
"""

from __future__ import annotations

import datetime as dt
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st

from app.resources import load_bundle
from device import admin
from device.audio import AudioError, load_audio
from device.bundle import BundleError
from device.config import Config, ConfigError
from device.embedder import Embedder
from device.enroll import Enroller, EnrollError, SampleFeedback, enroll_samples, feedback_line
from device.names import SpeakerNameError
from device.policies import POLICIES
from device.profile_export import export_profiles, import_profiles
from device.refresh import RefreshError, revert, set_hold
from device.runtime import RuntimeMissing
from device.store import Store, StoreError

UNLOCKED = "admin_unlocked"
FLASH = "admin_flash"


def is_admin() -> bool:
    """Has this browser session unlocked the admin actions with the admin password?"""
    return bool(st.session_state.get(UNLOCKED))


def admin_section(cfg: Config, store: Store) -> None:
    st.header("Admin")
    if not admin.has_password(store):
        st.info("Admin actions are off: no admin password is set on this device. Set one on the device with "
                f"`python -m device set-admin-password --store {cfg.store_path}`.")
        return
    if not st.session_state.get(UNLOCKED):
        unlock(store)
        return
    if FLASH in st.session_state:
        st.success(st.session_state.pop(FLASH))
    if st.button("Lock admin actions", key="admin_lock"):
        st.session_state[UNLOCKED] = False
        st.rerun()
    enroll(cfg, store)
    delete(store)
    refreshes(cfg, store)
    policy(cfg, store)
    profiles(cfg, store)


def unlock(store: Store) -> None:
    password = st.text_input("Admin password", type="password", key="admin_password")
    if st.button("Unlock", key="admin_unlock") and password:
        check = admin.check_password(store, password)
        st.session_state[UNLOCKED] = check.ok
        if check.ok:
            st.rerun()
        st.error(check.message)
    elif (wait := admin.lockout_remaining(store)) > 0:
        st.warning(f"Too many wrong passwords: the next attempt is checked in {wait:.0f} s.")


def enroll(cfg: Config, store: Store) -> None:
    st.subheader("Enroll a speaker")
    name = st.text_input("Name", key="enroll_name").strip()
    replace = st.checkbox("Start over (drop the existing samples)", key="enroll_replace")
    files = st.file_uploader("Samples (WAV or FLAC, one utterance each)", type=["wav", "flac"],
                             accept_multiple_files=True, key="enroll_files")
    if not (st.button("Enroll", key="enroll_go") and name and files):
        return
    try:
        enroller = Enroller.for_store(store, Embedder(load_bundle(cfg.model), threads=cfg.threads), cfg, name,
                                      replace=replace)
        progress = st.progress(enroller.progress, text=f"{enroller.progress:.0%} of the speech needed")

        def report(fb: SampleFeedback, fraction: float) -> None:
            (st.write if fb.accepted else st.warning)(feedback_line(fb, fraction))
            progress.progress(fraction, text=f"{fraction:.0%} of the speech needed")

        result = enroll_samples(enroller, store, _readable(files), report)
    except (EnrollError, BundleError, RuntimeMissing, SpeakerNameError, StoreError) as exc:
        st.error(str(exc))
        return
    more = "" if result.progress >= 1 else " — upload more samples to complete the profile"
    st.success(result.summary() + more)


def _readable(files: list) -> Iterator[tuple[str, np.ndarray]]:
    """(name, audio) of each uploaded file; an unreadable one is reported and skipped."""
    for f in files:
        try:
            yield f.name, load_audio(f.getvalue(), name=f.name, allow_silent=True)
        except AudioError as exc:
            st.error(str(exc))


def done(message: str) -> None:
    """Report success after a rerun, so every widget on the page already shows the change."""
    st.session_state[FLASH] = message
    st.rerun()


def delete(store: Store) -> None:
    st.subheader("Delete a speaker")
    names = [s.name for s in store.list_speakers()]
    name = st.selectbox("Speaker", names, key="delete_name")
    if st.button("Delete speaker", key="delete_go", disabled=not names) and name:
        if store.delete_speaker(name):
            done(f"deleted {name}")
        st.error(f"no speaker named {name!r}")


def refreshes(cfg: Config, store: Store) -> None:
    st.subheader("Profile refresh")
    st.caption(f"High-confidence accepts refresh a profile ({'on' if cfg.refresh.enabled else 'off'}: "
               "[refresh] enabled in the device config); reverting rebuilds it from its enrolment samples.")
    histories = [h for s in store.list_speakers() if (h := store.profile_history(s.name)) is not None]
    if not histories:
        return
    st.table(pd.DataFrame([{"name": h.speaker.name, "active refreshes": len(h.active),
                            "last refresh": _when(max((r.time for r in h.active), default=None)),
                            "hold": "on" if h.hold else "off"} for h in histories]).set_index("name"))
    by_name = {h.speaker.name: h for h in histories}
    # not "Speaker": the delete section's selectbox has that name, and one page must not have two
    # controls a screen reader (or a browser test) cannot tell apart
    name = st.selectbox("Profile to revert or hold", list(by_name), key="refresh_name")
    st.session_state["refresh_hold"] = by_name[name].hold  # what the store says, even if the CLI changed it
    st.toggle("Hold refresh", key="refresh_hold", on_change=_toggle_hold, args=(store.path, name))
    if st.button("Revert refreshes", key="refresh_revert", disabled=not by_name[name].active):
        try:
            reverted = revert(store, name)
        except RefreshError as exc:
            st.error(str(exc))
            return
        done(f"{name}: reverted {len(reverted)} refreshes; the profile is its enrolment samples again")


def _when(t: float | None) -> str:
    return dt.datetime.fromtimestamp(t).strftime("%Y-%m-%d %H:%M") if t else "–"


def _toggle_hold(store_path: Path, name: str) -> None:
    """The toggle's callback: it runs before the next script run, on another thread than the
    page's store connection, so it opens its own."""
    hold = bool(st.session_state["refresh_hold"])
    try:
        with Store(store_path) as store:
            set_hold(store, name, hold)
    except (RefreshError, StoreError) as exc:
        st.session_state[FLASH] = f"not changed: {exc}"
        return
    st.session_state[FLASH] = f"{name}: refreshes {'on hold' if hold else 'allowed'}"


def policy(cfg: Config, store: Store) -> None:
    st.subheader("Threshold policy")
    current = str(store.get_setting("policy", cfg.policy))
    options = [*POLICIES, "number"]
    choice = st.selectbox("Policy", options, index=options.index(current) if current in options else len(POLICIES),
                          key="policy_choice",
                          format_func=lambda p: f"{p} ({POLICIES[p]})" if p in POLICIES else "a fixed score")
    number = st.number_input("Threshold", value=float(current) if choice == "number" and current not in options else 0.5,
                             step=0.01, format="%.3f", key="policy_number", disabled=choice != "number")
    if st.button("Apply policy", key="policy_go"):
        value = str(number) if choice == "number" else choice
        try:
            value = cfg.override(policy=value).policy
            threshold = load_bundle(cfg.model).threshold(value)
        except (ConfigError, BundleError) as exc:
            st.error(str(exc))
            return
        store.set_setting("policy", value)
        done(f"policy {value}: threshold {threshold:+.3f}, in force for the daemon's next utterance")


def profiles(cfg: Config, store: Store) -> None:
    st.subheader("Export / import profiles")
    try:
        bundle = load_bundle(cfg.model)
    except (BundleError, OSError) as exc:
        st.error(f"model: {exc}")
        return
    sha = str(bundle.meta["sha256"])
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "profiles.json"
        n = export_profiles(store, path, bundle.name, sha)
        st.download_button(f"Export {n} profiles (JSON)", path.read_bytes(), file_name="speakerid-profiles.json",
                           mime="application/json", key="export_go")
        upload = st.file_uploader("Import an export (JSON)", type=["json"], key="import_file")
        replace = st.checkbox("Overwrite speakers that already exist", key="import_replace")
        if upload is not None and st.button("Import", key="import_go"):
            src = Path(tmp) / upload.name
            src.write_bytes(upload.getvalue())
            try:
                names = import_profiles(store, src, bundle.name, sha, replace=replace)
            except StoreError as exc:
                st.error(str(exc))
                return
            done(f"imported {len(names)} speakers: {', '.join(names) or 'none'}")
