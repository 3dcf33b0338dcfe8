"""Store and bundle access for the page. A Store is a per-thread SQLite connection, so every script
or fragment run opens its own; the parsed bundle is plain data and is cached across sessions."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import streamlit as st

from device.bundle import Bundle
from device.config import Config
from device.store import Store


@contextmanager
def open_store(cfg: Config) -> Iterator[Store | None]:
    """The device store, or None while nothing has created it yet (the page never creates it)."""
    if not cfg.store_path.is_file():
        yield None
        return
    store = Store(cfg.store_path)
    try:
        yield store
    finally:
        store.close()


@st.cache_resource(max_entries=4, show_spinner=False)
def _load_bundle(path: str, mtime_ns: int) -> Bundle:
    return Bundle.load(path)


def load_bundle(model: str) -> Bundle:
    """Bundle.load (which checks the model's sha256) once per version of model.json."""
    meta = Path(model) / "model.json"
    return _load_bundle(model, meta.stat().st_mtime_ns if meta.is_file() else 0)
