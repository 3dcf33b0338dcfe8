"""Store records -> pandas tables for the page (events, today's counts, enrolled speakers)."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pandas as pd

from device.store import Event, Speaker

ICONS = {"accept": "✅", "unsure": "🟡", "reject": "⛔"}
SHOWN = {label: f"{ICONS[label]} {'UNSURE' if label == 'unsure' else label}" for label in ICONS}  # unsure stands out


def public(events: list[Event]) -> list[Event]:
    """Events as an anonymous visitor may see them: an identification that was not accepted (rejected
    or unsure) does not name the closest enrolled speaker (that, like the score, would help tune an
    impersonation)."""
    return [dataclasses.replace(e, speaker=None) if e.kind == "identify" and not e.accepted else e for e in events]


def events_table(events: list[Event], scores: bool = True) -> pd.DataFrame:
    """One row per decision (a session's latest), newest first, as the daemon recorded it;
    `scores=False` leaves out score, threshold and margin (the page's anonymous view)."""
    table = pd.DataFrame([{
        "time": dt.datetime.fromtimestamp(e.time).strftime("%H:%M:%S"),
        "kind": e.kind,
        "decision": SHOWN[e.decision],
        "utterances": e.utterances,
        "best match": e.speaker or "–",
        "score": round(e.score, 3),
        "threshold": round(e.threshold, 3),
        "margin": round(e.score - e.threshold, 3),
        "length (s)": round(e.seconds, 1),
        "SNR (dB)": None if e.snr_db is None else round(e.snr_db, 1),
    } for e in events], columns=["time", "kind", "decision", "utterances", "best match", "score", "threshold",
                                 "margin", "length (s)", "SNR (dB)"])
    return table if scores else table.drop(columns=["score", "threshold", "margin"])


def start_of_today(now: float) -> float:
    return dt.datetime.combine(dt.date.fromtimestamp(now), dt.time()).timestamp()


def todays_counts(events: list[Event], now: float) -> pd.DataFrame:
    """Accepted, unsure and rejected decisions per (best-matching or claimed) speaker since local midnight."""
    midnight = start_of_today(now)
    column = {"accept": "accepted", "unsure": "unsure", "reject": "rejected"}
    rows: dict[str, dict[str, int]] = {}
    for e in events:
        if e.time >= midnight:
            row = rows.setdefault(e.speaker or "–", dict.fromkeys(column.values(), 0))
            row[column[e.decision]] += 1
    return pd.DataFrame([{"speaker": name, **counts} for name, counts in sorted(rows.items())],
                        columns=["speaker", *column.values()])


def speakers_table(speakers: list[Speaker], events: list[Event]) -> pd.DataFrame:
    """Enrolled speakers with when they were last accepted (within the retained events)."""
    last_seen: dict[str, float] = {}
    for e in events:
        if e.accepted and e.speaker:
            last_seen[e.speaker] = max(last_seen.get(e.speaker, 0.0), e.time)

    def when(t: float | None) -> str:
        return dt.datetime.fromtimestamp(t).strftime("%Y-%m-%d %H:%M") if t else "–"

    return pd.DataFrame([{"name": s.name, "speech (s)": round(s.speech_seconds, 1), "samples": s.n_samples,
                          "last seen": when(last_seen.get(s.name)), "quality": round(s.quality, 2), "model": s.model}
                         for s in speakers],
                        columns=["name", "speech (s)", "samples", "last seen", "quality", "model"])
