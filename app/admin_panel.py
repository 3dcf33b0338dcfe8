"""The admin section: unlock with the device's admin password (device/admin.py), then enroll from
uploaded files with the CLI's per-sample feedback (device/enroll.py's Enroller), delete a speaker,
change the threshold policy, export and import profiles.

The unlocked state lives in this browser session only; every action re-checks it on the server.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import streamlit as st

from app.resources import load_bundle
from device import admin
from device.audio import AudioError, load_audio
from device.bundle import BundleError
from device.config import Config, ConfigError
from device.embedder import Embedder
from device.enroll import Enroller, EnrollError
from device.names import SpeakerNameError
from device.runtime import RuntimeMissing
from device.store import Store, StoreError

UNLOCKED = "admin_unlocked"
FLASH = "admin_flash"


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
        enroller = Enroller.for_store(store, Embedder(cfg.model, threads=cfg.threads), cfg, name, replace=replace)
        progress = st.progress(enroller.progress, text=f"{enroller.progress:.0%} of the speech needed")
        for f in files:
            try:
                fb = enroller.add(load_audio(f.getvalue(), name=f.name, allow_silent=True), f.name)
            except AudioError as exc:
                st.error(str(exc))
                continue
            snr = "" if fb.snr_db is None else f", SNR {fb.snr_db:.0f} dB"
            line = f"[{enroller.progress:4.0%}] {fb.label}: {{}} ({fb.speech_seconds:.1f} s speech{snr})"
            (st.write if fb.accepted else st.warning)(line.format("ok" if fb.accepted else f"refused: {fb.message}"))
            progress.progress(enroller.progress, text=f"{enroller.progress:.0%} of the speech needed")
        if not enroller.new:
            raise EnrollError(f"{name}: no usable sample, nothing saved")
        speaker = enroller.save(store)
    except (EnrollError, BundleError, RuntimeMissing, SpeakerNameError, StoreError) as exc:
        st.error(str(exc))
        return
    more = "" if enroller.progress >= 1 else " — upload more samples to complete the profile"
    st.success(f"{speaker.name}: profile saved, {speaker.n_samples} samples, {speaker.speech_seconds:.1f} s of speech "
               f"({enroller.progress:.0%}), quality {speaker.quality:.2f}{more}")


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


def policy(cfg: Config, store: Store) -> None:
    st.subheader("Threshold policy")
    current = str(store.get_setting("policy", cfg.policy))
    options = ["far1", "eer", "number"]
    choice = st.selectbox("Policy", options, index=options.index(current) if current in options else 2,
                          key="policy_choice",
                          format_func=lambda p: {"far1": "far1 (1 % false accepts)", "eer": "eer (equal error rate)",
                                                 "number": "a fixed score"}[p])
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
        n = store.export_profiles(path, bundle.name, sha)
        st.download_button(f"Export {n} profiles (JSON)", path.read_bytes(), file_name="speakerid-profiles.json",
                           mime="application/json", key="export_go")
        upload = st.file_uploader("Import an export (JSON)", type=["json"], key="import_file")
        replace = st.checkbox("Overwrite speakers that already exist", key="import_replace")
        if upload is not None and st.button("Import", key="import_go"):
            src = Path(tmp) / upload.name
            src.write_bytes(upload.getvalue())
            try:
                names = store.import_profiles(src, bundle.name, sha, replace=replace)
            except StoreError as exc:
                st.error(str(exc))
                return
            done(f"imported {len(names)} speakers: {', '.join(names) or 'none'}")
