"""Altair charts: the score timeline against the threshold, and an utterance's MFCC heatmap."""

from __future__ import annotations

import datetime as dt

import altair as alt
import numpy as np
import pandas as pd

from device.store import Event


def score_timeline(events: list[Event]) -> alt.LayerChart:
    """Scores over time (accepts green, unsure amber, rejects red) with the threshold in force drawn as a dashed line."""
    data = pd.DataFrame([{"time": dt.datetime.fromtimestamp(e.time), "score": e.score, "threshold": e.threshold,
                          "decision": e.decision, "speaker": e.speaker or "–"}
                         for e in events])
    x = alt.X("time:T", title=None, axis=alt.Axis(format="%H:%M:%S"))
    points = alt.Chart(data).mark_circle(size=60).encode(
        x=x, y=alt.Y("score:Q", title="score"),
        color=alt.Color("decision:N", scale=alt.Scale(domain=["accept", "unsure", "reject"],
                                                     range=["#2e9d4f", "#e0a31b", "#d1453b"])),
        tooltip=["time:T", "speaker:N", "decision:N", alt.Tooltip("score:Q", format="+.3f"),
                 alt.Tooltip("threshold:Q", format="+.3f")])
    threshold = alt.Chart(data).mark_line(strokeDash=[6, 4], color="#555", interpolate="step-after").encode(
        x=x, y="threshold:Q")
    return alt.layer(points, threshold).properties(height=220)


def mfcc_heatmap(mfcc: np.ndarray) -> alt.Chart:
    """Frames on x, cepstral coefficients on y (c0 at the bottom).

    Each coefficient is standardised over the utterance before colouring: c0 (energy) spans a far
    wider range than the others and would otherwise flatten the whole picture to one colour.
    """
    values = np.asarray(mfcc, dtype=np.float32)
    values = (values - values.mean(axis=0)) / (values.std(axis=0) + 1e-6)
    frames, ceps = values.shape
    data = pd.DataFrame({"frame": np.repeat(np.arange(frames), ceps), "coefficient": np.tile(np.arange(ceps), frames),
                         "value": values.ravel()})
    return alt.Chart(data).mark_rect().encode(
        x=alt.X("frame:O", title="time (frames)", axis=alt.Axis(labels=False, ticks=False)),
        y=alt.Y("coefficient:O", title="MFCC", sort="descending"),
        color=alt.Color("value:Q", scale=alt.Scale(scheme="viridis"), legend=None),
    ).properties(height=200)
