"""Profile export/import: the `speakerid-profiles` JSON format (v1) that moves enrolled speakers
between devices running the same model.

An export holds each speaker's mean embedding and sample embeddings with their quality figures,
never audio. Embeddings are biometric data, so the file is created 0600. An import is refused
unless the export was made with the very same model (sha256): embeddings from another model are
meaningless to this one.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np

from device.store import Sample, Speaker, Store, StoreError

EXPORT_FORMAT = "speakerid-profiles"
EXPORT_VERSION = 1


def speaker_entry(store: Store, speaker: Speaker) -> dict:
    """One speaker as the export (and the household's shared profiles) carry it: no audio."""
    return {"name": speaker.name, "embedding": speaker.embedding.tolist(), "n_samples": speaker.n_samples,
            "speech_seconds": speaker.speech_seconds, "quality": speaker.quality,
            "samples": [{"embedding": x.embedding.tolist(), "seconds": x.seconds, "speech_seconds": x.speech_seconds,
                         "snr_db": x.snr_db, "flags": x.flags} for x in store.samples(speaker.name)]}


def save_entry(store: Store, entry: dict, model: str, model_sha: str, updated: float | None = None) -> None:
    """Write a `speaker_entry` as this store's profile of that name (KeyError/TypeError/ValueError if malformed)."""
    samples = [Sample(np.asarray(x["embedding"], np.float32), x["seconds"], x["speech_seconds"],
                      x["snr_db"], list(x["flags"])) for x in entry["samples"]]
    store.save_speaker(Speaker(entry["name"], model, model_sha, np.asarray(entry["embedding"], np.float32),
                               int(entry["n_samples"]), float(entry["speech_seconds"]), float(entry["quality"])),
                       samples, replace=True, updated=updated)


def export_profiles(store: Store, path: str | Path, model: str, model_sha: str) -> int:
    """Write the speakers enrolled with this model (mean + sample embeddings, no audio) as JSON."""
    speakers = [s for s in store.list_speakers() if s.model_sha == model_sha]
    doc = {"format": EXPORT_FORMAT, "version": EXPORT_VERSION, "model": model, "model_sha256": model_sha,
           "exported": time.time(), "speakers": [speaker_entry(store, s) for s in speakers]}
    fd = os.open(Path(path), os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(doc, f)
    return len(speakers)


def import_profiles(store: Store, path: str | Path, model: str, model_sha: str, replace: bool = False) -> list[str]:
    """Load an export made with the same model; existing names are kept unless `replace`."""
    src = Path(path)
    try:
        doc = json.loads(src.read_text())
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise StoreError(f"{src}: not a readable profile export ({exc})") from None
    if not isinstance(doc, dict) or doc.get("format") != EXPORT_FORMAT or doc.get("version") != EXPORT_VERSION:
        raise StoreError(f"{src}: not a {EXPORT_FORMAT} v{EXPORT_VERSION} file")
    if doc.get("model_sha256") != model_sha:
        raise StoreError(f"{src}: profiles were made with model {doc.get('model')!r} "
                         f"(sha256 {str(doc.get('model_sha256'))[:12]}…), this device runs {model!r} "
                         f"(sha256 {model_sha[:12]}…); embeddings from another model cannot be used — re-enroll")
    existing = {s.name for s in store.list_speakers()}
    imported = []
    try:
        for entry in doc["speakers"]:
            if entry["name"] in existing and not replace:
                continue
            save_entry(store, entry, model, model_sha)
            imported.append(entry["name"])
    except (KeyError, TypeError, ValueError) as exc:
        raise StoreError(f"{src}: malformed speaker entry ({exc})") from None
    return imported
