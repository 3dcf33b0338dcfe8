"""Faults: the microphone lost and back (a real PulseAudio server killed and restarted, a real ALSA
device that appears late), kill -9 mid-write, a full disk, a damaged store, and readers while the
daemon writes at full speed. Each leaves a store that opens cleanly and holds whole records only.

Fault-injecting stream wrappers for PortAudio errors are in tests/device/test_sources.py and
tests/device/test_daemon.py (FlakyStream); here only real parts fail.
"""

from __future__ import annotations

import json
import os
import random
import resource
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from device.audio import load_audio, save_wav
from device.config import AudioConfig
from device.lockout import locked_speakers
from device.session import EVIDENCE_UTTERANCES
from device.sources import MicSource
from device.store import Store
from tests.audio_env import FILE_PCM, PulseNullSink, alsa_file_env
from tests.helpers import DEVICE_PY, REPO, corpus_speakers, lines, run, start_pulse
from tests.reliability.helpers import enroll_cli, write_config

GAP = np.zeros(16000, np.float32)


@pytest.fixture(scope="module")
def device(tiny_bundle: Path, tiny_corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Two enrolled speakers and a 16 kHz stream of `utterances` clips with silence between them."""
    root = tmp_path_factory.mktemp("faults")
    speakers = list(corpus_speakers(tiny_corpus).items())[:2]
    config = write_config(root / "device.toml", tiny_bundle, root / "store.db",
                          'policy = "eer"\nheartbeat_s = 0.2\n[audio]\nreopen_backoff_s = 0.2\nstall_seconds = 1.0')
    for name, files in speakers:
        enroll_cli(config, name, files[:3])
    clips = [load_audio(f) for _, files in speakers for f in files[3:]]
    stream = root / "stream.wav"
    save_wav(stream, np.concatenate([GAP] + [np.concatenate([c, GAP]) for c in clips * 20]))
    return {"root": root, "config": config, "bundle": tiny_bundle, "stream": stream, "clips": clips,
            "names": [n for n, _ in speakers]}


def copy_store(device: dict, tmp_path: Path) -> Path:
    """A private copy of the enrolled store (and a config pointing at it) for a destructive test."""
    store = tmp_path / "store.db"
    with Store(device["root"] / "store.db", readonly=True) as src:
        dst = sqlite3.connect(store)
        src._db.backup(dst)
        dst.close()
    os.chmod(store, 0o600)
    return store


def whole_records(store: Path) -> dict:
    """integrity_check passes, every speaker's sample count matches its rows, every event is complete."""
    db = sqlite3.connect(f"file:{store}?mode=ro", uri=True)
    try:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert db.execute("PRAGMA foreign_key_check").fetchall() == []
        for name, n, rows in db.execute("SELECT p.name, p.n_samples, count(s.id) FROM speakers p "
                                        "LEFT JOIN samples s ON s.speaker_id = p.id GROUP BY p.id"):
            assert n == rows, (name, n, rows)
        for frames, ceps, size in db.execute("SELECT mfcc_frames, mfcc_ceps, length(mfcc) FROM events"):
            assert size == frames * ceps * 2
        return {"speakers": db.execute("SELECT count(*) FROM speakers").fetchone()[0],
                "events": db.execute("SELECT count(*) FROM events").fetchone()[0]}
    finally:
        db.close()


def wait_for(q: object, text: str, proc: subprocess.Popen, count: int = 1, seconds: float = 30) -> None:
    """Until `count` lines read so far contain `text` (the daemon's log lines are kept, not consumed)."""
    deadline = time.monotonic() + seconds
    while sum(text in line for _, line in list(q.queue)) < count:
        assert time.monotonic() < deadline and proc.poll() is None, [line for _, line in list(q.queue)][-20:]
        time.sleep(0.1)


def daemon(device: dict, store: Path, *extra: str, **popen: object) -> subprocess.Popen:
    return subprocess.Popen([str(DEVICE_PY), "-m", "device", "run", "--config", str(device["config"]), "--store",
                             str(store), "--json", *extra], cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
                            text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **popen)


# --- kill -9 ------------------------------------------------------------------------------------

ENROLL_LOOP = """
import sys, numpy as np
from device.store import Sample, Speaker, Store
store = Store(sys.argv[1]); i = 0
print("ready", flush=True)
while True:
    n = 1 + i % 7
    v = np.random.default_rng(i).normal(size=32).astype(np.float32)
    store.save_speaker(Speaker(f"s{i % 3}", "m", "sha", v, n, n * 2.0, 0.9),
                       [Sample(v, 2.0, 2.0, 20.0, [], b"x" * 20000) for _ in range(n)], replace=True)
    i += 1
"""


def test_kill9_during_enrollment_writes(tmp_path: Path) -> None:
    """Profile + samples are one transaction: after kill -9 at random moments, never half of each."""
    store = tmp_path / "store.db"
    rng = random.Random(0)
    for _ in range(5):
        proc = subprocess.Popen([str(DEVICE_PY), "-c", ENROLL_LOOP, str(store)], cwd=REPO, stdout=subprocess.PIPE,
                                env={**os.environ, "PYTHONPATH": str(REPO)}, text=True)
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(rng.uniform(0.1, 0.6))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert whole_records(store)["speakers"] >= 1
        with Store(store) as s:  # and it opens for writing again
            assert len(s.list_speakers()) >= 1


def session_rows(store: Path) -> dict[str, tuple[int, str, float]]:
    """{session: (utterances, decision label, score)} of the store's events, checking one row per session."""
    db = sqlite3.connect(f"file:{store}?mode=ro", uri=True)
    try:
        rows = db.execute("SELECT session, utterances, decision, score FROM events").fetchall()
    finally:
        db.close()
    sessions = [r[0] for r in rows]
    assert None not in sessions and len(sessions) == len(set(sessions)), sessions  # one event per session
    return {r[0]: (r[1], r[2], round(r[3], 4)) for r in rows}


def holds(row: tuple[int, str, float], d: dict) -> bool:
    """Whether an event row holds the printed decision `d`."""
    return row == (d["utterances"], d["decision"], d["score"])


def last_decisions(printed: list[str]) -> dict[str, dict]:
    """{session: its last printed decision} of the daemon's --json lines, checking that within a
    session the k-th decision rests on min(k, EVIDENCE_UTTERANCES) utterances (none lost, none repeated)."""
    last: dict[str, dict] = {}
    count: dict[str, int] = {}
    for line in printed:
        d = json.loads(line)
        count[d["session"]] = count.get(d["session"], 0) + 1
        assert d["utterances"] == min(count[d["session"]], EVIDENCE_UTTERANCES), (d, count)
        last[d["session"]] = d
    return last


def drained(q: object) -> list[str]:
    """Every line of an ended process's stdout: once it has ended, tests.helpers.lines' reader only
    empties the pipe, so the lines stop growing within a moment."""
    size = -1
    while q.qsize() != size:
        size = q.qsize()
        time.sleep(0.5)
    return [line for _, line in list(q.queue)]


def test_kill9_during_event_writes_then_restart(device: dict, tmp_path: Path) -> None:
    """kill -9 while the daemon decides and records at full speed (the file is read unpaced), then a
    restart. The daemon keeps one event per session and updates it after every decision (the stream's
    1 s pauses are within `session.gap_s`, so sessions run long), so what must survive is: every
    session printed has exactly one whole event row, holding the session's last printed decision or
    the one after it (recorded, killed before it was printed); at most one row of a session never
    printed (its first decision recorded, not printed). A restart opens new sessions beside the old
    rows, which it leaves as they were."""
    store = copy_store(device, tmp_path)
    proc = daemon(device, store, "--file", str(device["stream"]))
    out = lines(proc.stdout)
    deadline = time.monotonic() + 60
    while out.qsize() < 15:
        assert time.monotonic() < deadline and proc.poll() is None, proc.stderr.read()
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    shown = drained(out)
    printed = last_decisions(shown)
    assert len(shown) >= 15  # decisions printed before the kill
    assert whole_records(store)["speakers"] == 2
    before = session_rows(store)
    unprinted = set(before) - set(printed)
    assert set(printed) <= set(before) and len(unprinted) <= 1, (printed.keys(), before)
    assert all(before[s][0] == 1 for s in unprinted)
    for session, d in printed.items():  # the row holds the last printed decision, or the next one
        n = before[session][0]
        assert holds(before[session], d) or n == min(d["utterances"] + 1, EVIDENCE_UTTERANCES), (session, d)

    proc = daemon(device, store, "--file", str(device["stream"]))
    out = lines(proc.stdout)
    deadline = time.monotonic() + 60
    try:  # stopped once it decides (a fixed wait raced its start on a loaded machine: killed before its handler)
        while out.qsize() < 2:
            assert time.monotonic() < deadline and proc.poll() is None, proc.stderr.read()
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    again = last_decisions(drained(out))
    after = session_rows(store)
    assert again and not set(again) & set(before)  # the restart's decisions are new sessions
    assert {s: after[s] for s in before} == before  # the old rows untouched
    assert set(after) == set(before) | set(again)
    assert all(holds(after[s], d) for s, d in again.items())
    whole_records(store)


# --- disk full ----------------------------------------------------------------------------------


def test_disk_full_keeps_verifying(device: dict, tmp_path: Path) -> None:
    """RLIMIT_FSIZE caps every file the daemon writes: events stop being recorded, decisions go on,
    and the daemon still stops cleanly."""
    store = copy_store(device, tmp_path)
    limit = store.stat().st_size + 96 * 1024

    def cap() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the cap fails with EFBIG instead
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    proc = daemon(device, store, "--file", str(device["stream"]), preexec_fn=cap)
    stdout, stderr = proc.communicate(timeout=300)
    decisions = [json.loads(line) for line in stdout.splitlines()]
    assert proc.returncode == 0, stderr[-2000:]
    assert "decision not recorded in the store: " in stderr  # EFBIG is "disk I/O error", ENOSPC "disk is full"
    assert f"stopped after {len(decisions)} utterances (0 skipped)" in stderr  # every utterance still decided
    recorded = whole_records(store)
    assert recorded["speakers"] == 2 and 0 < recorded["events"] < len(decisions)


# --- a damaged store ----------------------------------------------------------------------------


@pytest.mark.parametrize("damage", ["garbage", "torn pages"])
def test_damaged_store_refused_not_recreated(device: dict, tmp_path: Path, damage: str) -> None:
    store = copy_store(device, tmp_path)
    data = bytearray(store.read_bytes())
    if damage == "garbage":
        data = bytearray(b"not a database " * 300)
    else:
        for page in range(1, len(data) // 4096):
            data[page * 4096:page * 4096 + 64] = os.urandom(64)
    store.write_bytes(bytes(data))
    for cmd in (["profiles", "list"], ["run", "--file", str(device["stream"])]):
        proc = run([DEVICE_PY, "-m", "device", *cmd, "--config", device["config"], "--store", store], timeout=60)
        assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
        assert f"error: {store}: not a usable SQLite store" in proc.stderr and "move it aside" in proc.stderr
        assert store.read_bytes() == bytes(data)  # never silently replaced by an empty store


# --- readers while the daemon writes at full speed ----------------------------------------------


def test_status_page_reads_while_daemon_writes(device: dict, tmp_path: Path) -> None:
    """The page's queries (dashboard.live) in a tight loop against the unpaced daemon."""
    store = copy_store(device, tmp_path)
    proc = daemon(device, store, "--file", str(device["stream"]))
    out = lines(proc.stdout)  # read while it runs: its --json lines fill a pipe (64 KiB) before it ends
    errors: list[str] = []
    reads = 0
    try:
        while proc.poll() is None:
            try:
                with Store(store, readonly=True) as s:
                    s.status()
                    s.recent_events(limit=500)
                    s.count_events()
                    s.list_speakers()
                    locked_speakers(s)
                reads += 1
            except Exception as exc:  # noqa: BLE001 - any failure reaching a reader is the bug
                errors.append(repr(exc))
    finally:
        proc.wait(timeout=300)  # not communicate(): stdout is the reader thread's
    stderr = proc.stderr.read()
    assert proc.returncode == 0, stderr[-2000:]
    assert errors == [] and reads > 20
    printed = drained(out)
    assert f"stopped after {len(printed)} utterances (0 skipped)" in stderr  # every utterance printed
    # one event per session (updated in place), holding the session's last decision
    decided = last_decisions(printed)
    assert whole_records(store)["events"] == len(decided)
    rows = session_rows(store)
    assert set(rows) == set(decided) and all(holds(rows[s], d) for s, d in decided.items())


# --- the microphone: real devices failing -------------------------------------------------------


def test_device_missing_at_open_then_plugged(tmp_path: Path) -> None:
    """A real ALSA device that does not exist yet: open fails (PortAudio), backs off, and records
    once the device appears (PortAudio re-initialised between attempts re-reads the ALSA config)."""
    samples = (np.sin(np.arange(32000) / 5) * 8000).astype(np.int16)
    env = alsa_file_env(tmp_path / "home", samples)
    rc = tmp_path / "home" / ".asoundrc"
    pcm = rc.read_text()
    rc.write_text("")
    script = f"""
import threading, time
from device.config import AudioConfig
from device.sources import MicSource
src = MicSource(AudioConfig(device="{FILE_PCM}", reopen_backoff_s=0.2, stall_seconds=1.0))
stop = threading.Event(); got = 0
threading.Timer(0.8, lambda: open({str(rc)!r}, "w").write({pcm!r})).start()
for block in src.blocks(stop):
    got += len(block)
    stop.set()
print(got, src.stats.errors, src.stats.opened)
"""
    proc = run([DEVICE_PY, "-c", script], env=env, timeout=60)
    assert proc.returncode == 0, proc.stderr[-2000:]
    got, errors, opened = map(int, proc.stdout.split())
    assert got > 0 and errors >= 1 and opened == 1
    assert f"cannot open input device '{FILE_PCM}'" in proc.stderr


def test_microphone_lost_mid_utterance_and_back(device: dict, tmp_path: Path) -> None:
    """The PulseAudio server under the microphone is killed halfway through an utterance, then
    restarted: the daemon logs it, reopens the stream and decides the next utterance."""
    pa = PulseNullSink(tmp_path / "pulse")
    start_pulse(pa)
    clip = tmp_path / "clip.wav"
    save_wav(clip, np.concatenate([device["clips"][0], GAP]))
    store = copy_store(device, tmp_path)
    env = {**os.environ, **pa.env, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([str(DEVICE_PY), "-m", "device", "run", "--device", "pulse", "--json", "--config",
                             str(device["config"]), "--store", str(store)], cwd=REPO, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        err = lines(proc.stderr)
        wait_for(err, "recording from", proc)
        player = pa.play(clip)
        time.sleep(0.7)
        pa.proc.kill()  # the "microphone" vanishes mid-utterance
        pa.proc.wait()
        player.wait(10)
        wait_for(err, "ERROR device.sources: audio: ", proc)
        assert pa.start() is None
        wait_for(err, "recording from", proc, count=2)
        decisions = lines(proc.stdout)
        assert pa.play(clip).wait(30) == 0
        result = json.loads(decisions.get(timeout=20)[1])
        assert result["kind"] == "identify" and result["speaker"] in device["names"]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        pa.stop()
    whole_records(store)


def test_mic_source_keeps_no_stale_audio_after_reopen() -> None:
    """After a lost stream the ring buffer is emptied, so audio from before the loss is never
    glued onto audio after it (which would make one utterance of two speakers)."""
    src = MicSource(AudioConfig())
    src._queue.put_nowait(np.ones(480, np.float32))

    class Dead:
        def close(self, ignore_errors: bool = True) -> None:
            raise OSError("device vanished")

    src._close(Dead())
    assert src._queue.empty()
