"""The page's Household panel: what the latest profile-sharing round (device/household.py) saw on
the broker: the devices, the profiles each shares (names the page lists anyway), conflicts. No broker
host, key or topic, as the Integrations panel."""

from __future__ import annotations

import time
from typing import Any

import streamlit as st

from app.health import duration


def household_rows(report: dict[str, Any]) -> list[dict[str, str]]:
    """One row per device whose profiles were on the broker in the latest round."""
    return [{"device": device, "profiles it shares": ", ".join(sorted(names))}
            for device, names in sorted(report.get("devices", {}).items())]


def household_panel(report: dict[str, Any] | None) -> None:
    if not report:
        return  # nothing shared: [household] is opt-in (README, "One household, several rooms")
    st.subheader("Household")
    ago = duration(max(0.0, time.time() - float(report.get("time", 0))))
    st.write(f"Last sync {ago} ago: {report.get('received', 0)} messages on the broker, "
             f"{len(report.get('merged', []))} profiles taken, {len(report.get('deleted', []))} removed.")
    rows = household_rows(report)
    if rows:
        st.table({key: [row[key] for row in rows] for key in rows[0]})
    if report.get("other_model"):
        st.warning(f"Made with another model, kept but not used (re-enrol them on a device running this model): "
                   f"{', '.join(sorted(report['other_model']))}.")
    if report.get("rejected"):
        st.warning(f"{report['rejected']} message(s) on the broker failed authentication (another household key, "
                   "or tampering) and were dropped.")
