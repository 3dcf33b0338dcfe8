"""The device's SQLite store: speaker profiles, enrollment samples, decision events, daemon status
and settings. The daemon and CLI write it; the status page reads (and edits) it concurrently.

- WAL mode + busy_timeout + short write transactions: readers never see "database is locked".
- `PRAGMA user_version` is the schema version; `MIGRATIONS[i]` upgrades version i to i + 1, and a
  store written by newer software is refused rather than guessed at.
- The file is created 0600 in a 0700 directory: voice profiles are biometric data.
- A profile and its samples are written in ONE transaction, so a crash (even kill -9) leaves the
  old profile or the new one, never half of each.
- Profile refresh (device/refresh.py) keeps its history in `profile_refresh`: every refresh vector
  with its score and state ('active' ones are part of the profile); `edit_profile` reads and changes
  a profile and its history inside one write transaction. Enrolment samples are never touched by it.
- One event per session (device/session.py): the daemon's every new decision of a session updates
  that session's event, so the page shows a conversation as one line that settles.
- Events carry a downsampled float16 MFCC matrix for the heatmap (device/heatmap.py), never raw
  audio. The profile export format lives in device/profile_export.py.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from device.config import DEFAULT_STORE
from device.heatmap import downsample_mfcc
from device.names import check_name

DEFAULT_RETENTION = 10000

MIGRATIONS = [
    # 0 -> 1
    """
    CREATE TABLE speakers (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        model TEXT NOT NULL,
        model_sha TEXT NOT NULL,
        embedding BLOB NOT NULL,
        n_samples INTEGER NOT NULL,
        speech_seconds REAL NOT NULL,
        quality REAL NOT NULL,
        created REAL NOT NULL,
        updated REAL NOT NULL
    );
    CREATE TABLE samples (
        id INTEGER PRIMARY KEY,
        speaker_id INTEGER NOT NULL REFERENCES speakers(id) ON DELETE CASCADE,
        embedding BLOB NOT NULL,
        seconds REAL NOT NULL,
        speech_seconds REAL NOT NULL,
        snr_db REAL,
        flags TEXT NOT NULL,
        audio BLOB,
        created REAL NOT NULL
    );
    CREATE INDEX samples_speaker ON samples(speaker_id);
    CREATE TABLE events (
        id INTEGER PRIMARY KEY,
        time REAL NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('identify', 'verify')),
        claim TEXT,
        speaker TEXT,
        score REAL NOT NULL,
        threshold REAL NOT NULL,
        accepted INTEGER NOT NULL,
        seconds REAL NOT NULL,
        snr_db REAL,
        mfcc BLOB,
        mfcc_frames INTEGER NOT NULL DEFAULT 0,
        mfcc_ceps INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE status (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    """,
    # 1 -> 2: profile refresh history and the admin's hold on it
    """
    ALTER TABLE speakers ADD COLUMN refresh_hold INTEGER NOT NULL DEFAULT 0;
    CREATE TABLE profile_refresh (
        id INTEGER PRIMARY KEY,
        speaker_id INTEGER NOT NULL REFERENCES speakers(id) ON DELETE CASCADE,
        embedding BLOB NOT NULL,
        score REAL NOT NULL,
        threshold REAL NOT NULL,
        time REAL NOT NULL,
        event_id INTEGER,
        state TEXT NOT NULL CHECK (state IN ('active', 'reverted', 'evicted', 'refused')),
        reason TEXT NOT NULL DEFAULT ''
    );
    CREATE INDEX profile_refresh_speaker ON profile_refresh(speaker_id);
    """,
    # 2 -> 3: sessions (device/session.py): one event per session, its label and how many utterances it rests on
    """
    ALTER TABLE events ADD COLUMN session TEXT;
    ALTER TABLE events ADD COLUMN utterances INTEGER NOT NULL DEFAULT 1;
    ALTER TABLE events ADD COLUMN decision TEXT NOT NULL DEFAULT 'reject'
        CHECK (decision IN ('accept', 'unsure', 'reject'));
    UPDATE events SET decision = CASE WHEN accepted THEN 'accept' ELSE 'reject' END;
    CREATE INDEX events_session ON events(session);
    """,
]
SCHEMA_VERSION = len(MIGRATIONS)
EVENT_COLUMNS = ("time, kind, claim, speaker, score, threshold, accepted, decision, utterances, seconds, snr_db, mfcc, "
                 "mfcc_frames, mfcc_ceps, session")
REFRESH_HISTORY_KEEP = 100  # newest inactive refresh rows kept per speaker (active ones are always kept)
DELETIONS = "household.deletions"  # settings key: {name: when} of deleted profiles (tombstones)
LAST_SYNC = "household.last_sync"  # settings key: the latest household sync round (device/household.py)


class StoreError(RuntimeError):
    """A store this software cannot use; the message names the file."""


RECOVERY = ("it is never replaced by an empty one: move it aside, then re-enroll or `python -m device profiles "
            "import` a recent export (docs/RELIABILITY.md, 'A damaged store')")


def store_failure(path: Path, exc: sqlite3.Error) -> StoreError:
    """The StoreError for an SQLite failure on `path`; a damaged file gets the recovery step."""
    damaged = getattr(exc, "sqlite_errorname", "") in ("SQLITE_CORRUPT", "SQLITE_NOTADB")
    return StoreError(f"{path}: not a usable SQLite store ({exc})" + (f"; {RECOVERY}" if damaged else ""))


@dataclass
class Sample:
    embedding: np.ndarray
    seconds: float
    speech_seconds: float
    snr_db: float | None
    flags: list[str] = field(default_factory=list)
    audio: bytes | None = None  # 16-bit WAV bytes, only kept with --keep-audio
    created: float = 0.0


@dataclass
class Speaker:
    name: str
    model: str
    model_sha: str
    embedding: np.ndarray  # unit mean of the sample embeddings
    n_samples: int
    speech_seconds: float
    quality: float  # mean consistency of the samples with the profile, 0..1
    created: float = 0.0
    updated: float = 0.0


@dataclass
class RefreshRecord:
    """One refresh vector of a profile and what became of it."""

    embedding: np.ndarray
    score: float
    threshold: float
    time: float
    state: str  # 'active' (part of the profile) | 'reverted' | 'evicted' (a newer one took its place) | 'refused'
    reason: str = ""
    event_id: int | None = None
    id: int = 0


@dataclass
class ProfileHistory:
    """A speaker's profile with what it is made of: enrolment sample embeddings and refreshes (oldest first)."""

    speaker: Speaker
    enrolment: list[np.ndarray]
    hold: bool  # the admin stopped refreshes of this profile
    refreshes: list[RefreshRecord]

    @property
    def active(self) -> list[RefreshRecord]:
        return [r for r in self.refreshes if r.state == "active"]


@dataclass
class Event:
    kind: str  # 'identify' | 'verify'
    speaker: str | None  # best match (identify) or the claim (verify)
    score: float
    threshold: float
    accepted: bool
    seconds: float
    claim: str | None = None
    snr_db: float | None = None
    mfcc: np.ndarray | None = None  # (<= heatmap.EVENT_MFCC_FRAMES, n_ceps) float16
    time: float = 0.0
    id: int = 0
    session: str | None = None  # the daemon's session (device/session.py): its one event is updated in place
    utterances: int = 1  # utterances of the session the decision rests on
    decision: str = ""  # 'accept' | 'unsure' | 'reject'; "" = derived from `accepted`

    def __post_init__(self) -> None:
        self.decision = self.decision or ("accept" if self.accepted else "reject")


def _blob(vec: np.ndarray) -> bytes:
    return np.asarray(vec, dtype="<f4").tobytes()


def _vec(blob: bytes) -> np.ndarray:
    return np.frombuffer(blob, dtype="<f4").copy()


def _prepare_file(path: Path) -> None:
    """Create the directory 0700 and the file 0600 before SQLite touches them (WAL/SHM files inherit
    the database file's mode)."""
    if not path.parent.exists():
        path.parent.mkdir(parents=True, mode=0o700)
    if not path.exists():
        os.close(os.open(path, os.O_CREAT | os.O_RDWR, 0o600))


class Store:
    """One connection to the store; use one Store per thread."""

    def __init__(self, path: str | Path = DEFAULT_STORE, readonly: bool = False) -> None:
        self.path = Path(path).expanduser()
        if readonly:
            if not self.path.is_file():
                raise StoreError(f"{self.path}: no store here yet (run `python -m device enroll` first)")
            self._db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, isolation_level=None, timeout=10)
        else:
            _prepare_file(self.path)
            self._db = sqlite3.connect(self.path, isolation_level=None, timeout=10)
        try:
            self._db.execute("PRAGMA busy_timeout = 10000")
            version = self._db.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise StoreError(f"{self.path}: store schema version {version} is newer than this software "
                                 f"understands ({SCHEMA_VERSION}); upgrade speakerid or point --store elsewhere")
            if not readonly:
                self._db.execute("PRAGMA journal_mode = WAL")
                self._migrate(version)
            self._db.execute("PRAGMA foreign_keys = ON")
        except sqlite3.DatabaseError as exc:
            self._db.close()
            raise store_failure(self.path, exc) from None
        except StoreError:
            self._db.close()
            raise

    def _migrate(self, version: int) -> None:
        for target in range(version + 1, SCHEMA_VERSION + 1):
            with self._write() as db:
                if db.execute("PRAGMA user_version").fetchone()[0] >= target:
                    continue  # another process migrated first
                _run_script(db, MIGRATIONS[target - 1])
                db.execute(f"PRAGMA user_version = {target}")

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def schema_version(self) -> int:
        return int(self._db.execute("PRAGMA user_version").fetchone()[0])

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """A short IMMEDIATE transaction: takes the write lock up front, so it can't deadlock."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    # --- speakers -------------------------------------------------------------------------------

    def _speakers(self, where: str = "", params: tuple = ()) -> list[Speaker]:
        rows = self._db.execute("SELECT name, model, model_sha, embedding, n_samples, speech_seconds, quality, "
                                f"created, updated FROM speakers {where} ORDER BY name", params).fetchall()
        return [Speaker(r[0], r[1], r[2], _vec(r[3]), *r[4:]) for r in rows]

    def list_speakers(self) -> list[Speaker]:
        return self._speakers()

    def get_speaker(self, name: str) -> Speaker | None:
        found = self._speakers("WHERE name = ?", (name,))
        return found[0] if found else None

    def samples(self, name: str) -> list[Sample]:
        rows = self._db.execute(
            "SELECT s.embedding, s.seconds, s.speech_seconds, s.snr_db, s.flags, s.audio, s.created "
            "FROM samples s JOIN speakers p ON p.id = s.speaker_id WHERE p.name = ? ORDER BY s.id", (name,)).fetchall()
        return [Sample(_vec(r[0]), r[1], r[2], r[3], json.loads(r[4]), r[5], r[6]) for r in rows]

    def profiles(self, model_sha: str) -> dict[str, np.ndarray]:
        """Mean embeddings of the speakers enrolled with this model (others are unusable with it)."""
        rows = self._db.execute("SELECT name, embedding FROM speakers WHERE model_sha = ? ORDER BY name",
                                (model_sha,)).fetchall()
        return {name: _vec(blob) for name, blob in rows}

    def profiles_version(self) -> tuple[int, float]:
        """Changes whenever a profile is added, replaced or deleted: a cheap reload check. The sum, not
        the newest time: a profile merged from the household keeps its (possibly older) version."""
        n, updated = self._db.execute("SELECT count(*), coalesce(sum(updated), 0) FROM speakers").fetchone()
        return int(n), float(updated)

    def save_speaker(self, speaker: Speaker, new_samples: list[Sample], replace: bool = False,
                     updated: float | None = None) -> None:
        """Write a profile and its new samples atomically; `replace` drops the old samples first.
        `updated` keeps another device's version of the profile (device/household.py), else now."""
        check_name(speaker.name)
        now = time.time()
        with self._write() as db:
            row = db.execute("SELECT id, created FROM speakers WHERE name = ?", (speaker.name,)).fetchone()
            values = (speaker.model, speaker.model_sha, _blob(speaker.embedding), speaker.n_samples,
                      speaker.speech_seconds, speaker.quality, now if updated is None else updated)
            if row is None:
                cur = db.execute("INSERT INTO speakers (model, model_sha, embedding, n_samples, speech_seconds, quality, "
                                 "updated, name, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", (*values, speaker.name, now))
                speaker_id = cur.lastrowid
            else:
                speaker_id = row[0]
                db.execute("UPDATE speakers SET model = ?, model_sha = ?, embedding = ?, n_samples = ?, "
                           "speech_seconds = ?, quality = ?, updated = ? WHERE id = ?", (*values, speaker_id))
                if replace:
                    db.execute("DELETE FROM samples WHERE speaker_id = ?", (speaker_id,))
                # the profile written is its enrolment samples alone: refreshes no longer in it are history
                db.execute("UPDATE profile_refresh SET state = 'reverted', reason = 're-enrolled' "
                           "WHERE speaker_id = ? AND state = 'active'", (speaker_id,))
            db.executemany(
                "INSERT INTO samples (speaker_id, embedding, seconds, speech_seconds, snr_db, flags, audio, created) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [(speaker_id, _blob(s.embedding), s.seconds, s.speech_seconds, s.snr_db, json.dumps(s.flags), s.audio,
                  s.created or now) for s in new_samples])

    def profile_history(self, name: str) -> ProfileHistory | None:
        found = self._history(name)
        return None if found is None else found[1]

    def _history(self, name: str) -> tuple[int, ProfileHistory] | None:
        speaker = self.get_speaker(name)
        if speaker is None:
            return None
        speaker_id, hold = self._db.execute("SELECT id, refresh_hold FROM speakers WHERE name = ?", (name,)).fetchone()
        enrolment = [_vec(r[0]) for r in self._db.execute(
            "SELECT embedding FROM samples WHERE speaker_id = ? ORDER BY id", (speaker_id,))]
        refreshes = [RefreshRecord(_vec(r[0]), *r[1:]) for r in self._db.execute(
            "SELECT embedding, score, threshold, time, state, reason, event_id, id FROM profile_refresh "
            "WHERE speaker_id = ? ORDER BY id", (speaker_id,))]
        return speaker_id, ProfileHistory(speaker, enrolment, bool(hold), refreshes)

    @contextmanager
    def edit_profile(self, name: str) -> Iterator[ProfileEdit | None]:
        """A speaker's history read and changed in ONE write transaction (None if not enrolled), so
        a refresh and a revert running at once cannot interleave."""
        with self._write() as db:
            found = self._history(name)
            if found is None:
                yield None
                return
            yield ProfileEdit(db, *found)
            db.execute("DELETE FROM profile_refresh WHERE speaker_id = ? AND state != 'active' AND id NOT IN "
                       "(SELECT id FROM profile_refresh WHERE speaker_id = ? AND state != 'active' "
                       "ORDER BY id DESC LIMIT ?)", (found[0], found[0], REFRESH_HISTORY_KEEP))

    def set_refresh_hold(self, name: str, hold: bool) -> bool:
        """Stop (or allow again) refreshes of a profile; False if nobody has that name."""
        with self._write() as db:
            return db.execute("UPDATE speakers SET refresh_hold = ? WHERE name = ?", (int(hold), name)).rowcount > 0

    def delete_speaker(self, name: str, when: float | None = None) -> bool:
        """Delete a profile and remember when (`deletions`: what a household shares as tombstones)."""
        with self._write() as db:
            deleted = db.execute("DELETE FROM speakers WHERE name = ?", (name,)).rowcount > 0
            if deleted:
                gone = json.loads((db.execute("SELECT value FROM settings WHERE key = ?", (DELETIONS,)).fetchone()
                                   or ["{}"])[0])
                gone[name] = time.time() if when is None else when
                db.execute("INSERT OR REPLACE INTO settings (key, value) VALUES (?, ?)", (DELETIONS, json.dumps(gone)))
            return deleted

    def remember_deletion(self, name: str, when: float) -> None:
        """A deletion made elsewhere of a profile this store never had (a household's tombstone)."""
        self.set_setting(DELETIONS, {**self.deletions(), name: when})

    def deletions(self) -> dict[str, float]:
        """{name: when} of every profile deleted from this store."""
        return dict(self.get_setting(DELETIONS, {}))

    # --- events ---------------------------------------------------------------------------------

    def add_event(self, event: Event) -> int:
        """Record a decision and trim the table to the 'event_retention' setting. A decision of a
        session that already has an event replaces that event's decision (one event per session,
        so an unsure that is accepted later in the session is one event, not two)."""
        mfcc = None if event.mfcc is None else downsample_mfcc(event.mfcc)
        values = (event.time or time.time(), event.kind, event.claim, event.speaker, float(event.score),
                  float(event.threshold), int(event.accepted), event.decision, int(event.utterances),
                  float(event.seconds), event.snr_db, None if mfcc is None else mfcc.astype("<f2").tobytes(),
                  0 if mfcc is None else mfcc.shape[0], 0 if mfcc is None else mfcc.shape[1], event.session)
        retention = int(self.get_setting("event_retention", DEFAULT_RETENTION))
        with self._write() as db:
            row = None if event.session is None else db.execute(
                "SELECT id FROM events WHERE session = ? ORDER BY id DESC LIMIT 1", (event.session,)).fetchone()
            if row is not None:
                db.execute(f"UPDATE events SET ({EVENT_COLUMNS}) = ({', '.join('?' * len(values))}) WHERE id = ?",
                           (*values, row[0]))
                return int(row[0])
            cur = db.execute(f"INSERT INTO events ({EVENT_COLUMNS}) VALUES ({', '.join('?' * len(values))})", values)
            event_id = int(cur.lastrowid)
            db.execute("DELETE FROM events WHERE id <= ?", (event_id - retention,))
        return event_id

    def recent_events(self, limit: int = 50, since_id: int = 0) -> list[Event]:
        """Newest first; `since_id` returns only events after that id (for polling)."""
        rows = self._db.execute(
            f"SELECT id, {EVENT_COLUMNS} FROM events WHERE id > ? ORDER BY id DESC LIMIT ?", (since_id, limit)).fetchall()
        return [Event(id=r[0], time=r[1], kind=r[2], claim=r[3], speaker=r[4], score=r[5], threshold=r[6],
                      accepted=bool(r[7]), decision=r[8], utterances=r[9], seconds=r[10], snr_db=r[11],
                      mfcc=None if r[12] is None else np.frombuffer(r[12], "<f2").reshape(r[13], r[14]), session=r[15])
                for r in rows]

    def count_events(self) -> int:
        return int(self._db.execute("SELECT count(*) FROM events").fetchone()[0])

    # --- status and settings --------------------------------------------------------------------

    def set_status(self, values: dict[str, Any]) -> None:
        """Replace the daemon status (pid, started, model, runtime, audio device, ...)."""
        with self._write() as db:
            db.execute("DELETE FROM status")
            db.executemany("INSERT INTO status (key, value) VALUES (?, ?)",
                           [(k, json.dumps(v)) for k, v in {**values, "heartbeat": time.time()}.items()])

    def heartbeat(self, values: dict[str, Any] | None = None) -> None:
        """Refresh the heartbeat time (and any changed status values)."""
        with self._write() as db:
            db.executemany("INSERT OR REPLACE INTO status (key, value) VALUES (?, ?)",
                           [(k, json.dumps(v)) for k, v in {**(values or {}), "heartbeat": time.time()}.items()])

    def status(self) -> dict[str, Any]:
        """The daemon's status values plus 'heartbeat_age' in seconds (None if it never ran)."""
        values = {k: json.loads(v) for k, v in self._db.execute("SELECT key, value FROM status")}
        beat = values.get("heartbeat")
        values["heartbeat_age"] = None if beat is None else max(0.0, time.time() - float(beat))
        return values

    def get_setting(self, key: str, default: Any = None) -> Any:
        row = self._db.execute("SELECT value FROM settings WHERE key = ?", (key,)).fetchone()
        return default if row is None else json.loads(row[0])

    def set_setting(self, key: str, value: Any) -> None:
        with self._write() as db:
            db.execute("INSERT OR REPLACE INTO settings (key, value) VALUES (?, ?)", (key, json.dumps(value)))


class ProfileEdit:
    """Changes to one speaker's profile and refresh history inside `Store.edit_profile`'s transaction."""

    def __init__(self, db: sqlite3.Connection, speaker_id: int, history: ProfileHistory) -> None:
        self._db, self._speaker_id, self.history = db, speaker_id, history

    def add(self, refresh: RefreshRecord) -> int:
        """Record a refresh (its `id` is ignored); returns the new id."""
        cur = self._db.execute(
            "INSERT INTO profile_refresh (speaker_id, embedding, score, threshold, time, event_id, state, reason) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)", (self._speaker_id, _blob(refresh.embedding), float(refresh.score),
                                                float(refresh.threshold), refresh.time, refresh.event_id, refresh.state,
                                                refresh.reason))
        return int(cur.lastrowid)

    def mark(self, ids: list[int], state: str, reason: str) -> None:
        self._db.executemany("UPDATE profile_refresh SET state = ?, reason = ? WHERE id = ? AND speaker_id = ?",
                             [(state, reason, i, self._speaker_id) for i in ids])

    def set_embedding(self, embedding: np.ndarray) -> None:
        """Replace the profile; `updated` moves past every profile's, so `profiles_version` changes."""
        self._db.execute("UPDATE speakers SET embedding = ?, updated = max(?, (SELECT max(updated) FROM speakers) + 0.001) "
                         "WHERE id = ?", (_blob(embedding), time.time(), self._speaker_id))


def _run_script(db: sqlite3.Connection, script: str) -> None:
    """Run a migration inside the open transaction (executescript would COMMIT it first)."""
    for statement in filter(str.strip, script.split(";")):
        db.execute(statement)
