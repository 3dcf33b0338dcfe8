"""Page layout: configuration errors first, then the live dashboard, Try it and Admin."""

from __future__ import annotations

from collections.abc import Sequence

import streamlit as st

from app.admin_panel import admin_section
from app.dashboard import live
from app.options import page_config
from app.resources import open_store
from app.tryit import try_it
from device.config import ConfigError
from device.store import StoreError


def main(argv: Sequence[str]) -> None:
    st.set_page_config(page_title="Speaker verification — status", page_icon="🎙️", layout="wide")
    st.title("Speaker verification — status")
    try:
        cfg = page_config(argv)
    except ConfigError as exc:
        st.error(str(exc))
        return
    st.caption(f"store {cfg.store_path} · model {cfg.model}")
    try:
        live(cfg)
        with open_store(cfg) as store:
            if store is None:
                return
            try_it(cfg, store)
            admin_section(cfg, store)
    except StoreError as exc:
        st.error(str(exc))
