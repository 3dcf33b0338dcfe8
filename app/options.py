"""Where the page finds the store and the model: `streamlit run app/status.py -- --store P --model D
[--config F]`, else the SPEAKERID_STORE / SPEAKERID_MODEL / SPEAKERID_CONFIG environment variables,
else the device config defaults (the same ones the daemon uses)."""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping, Sequence

from device.config import Config

ENV = {"store": "SPEAKERID_STORE", "model": "SPEAKERID_MODEL", "config": "SPEAKERID_CONFIG"}


def page_config(argv: Sequence[str], environ: Mapping[str, str] = os.environ) -> Config:
    """The device Config the page runs with; raises ConfigError for a bad config file."""
    parser = argparse.ArgumentParser(prog="app/status.py", add_help=False)
    for name in ENV:
        parser.add_argument(f"--{name}")
    args, _ = parser.parse_known_args(list(argv))
    value = {name: getattr(args, name) or environ.get(var) or None for name, var in ENV.items()}
    return Config.load(value["config"]).override(store=value["store"], model=value["model"])
