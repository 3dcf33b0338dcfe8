"""`python -m device ...`: devices, enroll, verify, identify, run, profiles, status, set-admin-password.

Exit codes: 0 success (verify/identify: accepted), 1 rejected or unsure, 2 an error (message on
stderr naming the file or speaker at fault).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import sqlite3
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from device.admin import AdminError, set_password, set_password_interactively
from device.assist import AssistEnroller, AssistProxy, serve
from device.audio import AudioError, load_audio
from device.bundle import Bundle, BundleError
from device.config import Config, ConfigError
from device.daemon import run_daemon
from device.embedder import Embedder
from device.enroll import Enroller, EnrollError, enroll_samples, feedback_line
from device.features import FeatureConfigError
from device.lockout import LockedOut
from device.names import SpeakerNameError
from device.policies import POLICIES
from device.profile_export import export_profiles, import_profiles
from device.publish import Publisher
from device.recognizer import RecognitionError, Recognizer, Result
from device.refresh import RefreshError, history, history_dict, history_text, revert, set_hold
from device.runtime import RuntimeMissing
from device.sources import FileSource, MicSource, list_devices
from device.store import Store, StoreError, store_failure
from device.vad import Segmenter

EXPECTED = (AdminError, AudioError, BundleError, ConfigError, EnrollError, FeatureConfigError, LockedOut, RecognitionError,
            RefreshError, RuntimeMissing, SpeakerNameError, StoreError, OSError)


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", help="TOML config file (flags below override it)")
    common.add_argument("--model", help="model bundle directory (default models/default)")
    common.add_argument("--store", help="SQLite store (default ~/.local/share/speakerid/store.db)")
    common.add_argument("--policy", help=f"threshold policy: {', '.join(POLICIES)} or a number")
    common.add_argument("--device", help="audio input device name or index")
    common.add_argument("--threads", type=int, help="TFLite interpreter threads")
    common.add_argument("--json", action="store_true", help="machine-readable output")
    common.add_argument("-v", "--verbose", action="store_true")

    p = argparse.ArgumentParser(prog="python -m device", description="Offline speaker verification on this device.")
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("devices", parents=[common], help="list audio input devices")
    sub.add_parser("status", parents=[common], help="show the daemon status recorded in the store")
    a = sub.add_parser("set-admin-password", parents=[common], help="set the status page's admin password")
    a.add_argument("--stdin", action="store_true", help="read the password from one line of stdin (no prompt)")

    e = sub.add_parser("enroll", parents=[common], help="enroll (or add samples for) a speaker")
    e.add_argument("name")
    src = e.add_mutually_exclusive_group(required=True)
    src.add_argument("--mic", action="store_true", help="record from the microphone until enough speech")
    src.add_argument("--files", nargs="+", type=Path, metavar="F", help="audio files, one sample each")
    e.add_argument("--replace", action="store_true", help="drop the existing samples and start over")
    e.add_argument("--keep-audio", action="store_true", help="also store the sample audio (off by default)")
    e.add_argument("--timeout", type=float, default=120.0, help="--mic: give up after this many seconds")

    for name, text in (("verify", "is this the claimed speaker?"), ("identify", "who is speaking?")):
        r = sub.add_parser(name, parents=[common], help=text)
        if name == "verify":
            r.add_argument("--claim", required=True, help="the enrolled speaker to verify against")
        src = r.add_mutually_exclusive_group(required=True)
        src.add_argument("--mic", action="store_true", help="listen for one utterance")
        src.add_argument("--file", type=Path, nargs="+", metavar="F",
                         help="audio file(s), each one utterance; with several, --json prints one object a line "
                              "(with 'file'; 'error' for a file that could not be judged) and the exit code is "
                              "0 when all were accepted, 1 when any was rejected, 2 when any failed")
        r.add_argument("--session", action="store_true",
                       help="judge the files (or, with --mic, the utterances heard until --timeout) as one "
                            "conversation: ONE decision from all of their evidence, with 'utterances' (how many it "
                            "used) and 'split_at' (files where another speaker took over; the decision is on the "
                            "last speaker's files)")
        r.add_argument("--timeout", type=float, default=30.0, help="--mic: give up after this many seconds")

    d = sub.add_parser("run", parents=[common], help="the daemon: listen and decide continuously")
    d.add_argument("--file", type=Path, help="read this file instead of the microphone")
    d.add_argument("--realtime", action="store_true", help="--file: pace it like a live microphone")
    d.add_argument("--claim", action="append", help="verify against these speakers instead of identifying")

    a = sub.add_parser("assist", parents=[common], help="a Wyoming speech-to-text proxy for Home Assistant's Assist "
                       "that verifies the speaker, cuts other voices and tags the transcript (docs/ASSIST.md)")
    a.add_argument("--listen", help="where Home Assistant connects (default [assist] listen, tcp://0.0.0.0:10350)")
    a.add_argument("--upstream", help="the real Wyoming ASR service, e.g. tcp://127.0.0.1:10300")
    a.add_argument("--tag", action="store_true", default=None, help="prefix an accepted speaker's transcript with '[name] '")
    ae = sub.add_parser("assist-enroll", parents=[common],
                        help="enroll NAME from the next commands spoken to a satellite through the Assist proxy's port")
    ae.add_argument("name")
    ae.add_argument("--listen", help="where Home Assistant connects (default [assist] listen)")
    ae.add_argument("--samples", type=int, default=4, help="usable commands to take (default 4)")

    pr = sub.add_parser("profiles", help="list, export, import or delete enrolled speakers; their refresh history")
    psub = pr.add_subparsers(dest="action", required=True)
    psub.add_parser("list", parents=[common])
    x = psub.add_parser("export", parents=[common])
    x.add_argument("path", type=Path)
    i = psub.add_parser("import", parents=[common])
    i.add_argument("path", type=Path)
    i.add_argument("--replace", action="store_true", help="overwrite speakers that already exist")
    rm = psub.add_parser("delete", parents=[common])
    rm.add_argument("name")
    hist = psub.add_parser("history", parents=[common], help="enrolment samples and refresh history of a profile")
    hist.add_argument("name")
    rv = psub.add_parser("revert", parents=[common], help="undo refreshes of a profile (default: all active ones)")
    rv.add_argument("name")
    upto = rv.add_mutually_exclusive_group()
    upto.add_argument("--to", type=int, metavar="ID", help="keep the active refreshes up to and including ID")
    upto.add_argument("--all", action="store_true", help="revert every active refresh (the default)")
    hold = psub.add_parser("hold", parents=[common], help="stop refreshes of a profile (--off: allow them again)")
    hold.add_argument("name")
    hold.add_argument("--off", action="store_true", help="lift the hold")
    sync = psub.add_parser("sync", parents=[common], help="one round of sharing profiles with the household's other "
                           "devices through the MQTT broker ([household] key_file)")
    sync.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for the broker's retained profiles")

    hh = sub.add_parser("household", help="the household key that lets devices share profiles")
    hsub = hh.add_subparsers(dest="action", required=True)
    init = hsub.add_parser("init", parents=[common], help="write a new household key (0600); copy it to join a device")
    init.add_argument("--key-file", required=True, type=Path)
    return p


def load_config(args: argparse.Namespace) -> Config:
    """The config file with the command-line flags laid over it."""
    claimed = args.claim if args.command == "run" else None
    assist = {f"assist.{key}": getattr(args, key, None) for key in ("listen", "upstream", "tag")}
    return Config.load(args.config).override(model=args.model, store=args.store, policy=args.policy,
                                             threads=args.threads, claimed=claimed, **{"audio.device": args.device},
                                             **assist)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    services = ("run", "enroll", "assist", "assist-enroll")
    level = logging.DEBUG if args.verbose else logging.INFO if args.command in services else logging.WARNING
    logging.basicConfig(level=level, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        cfg = load_config(args)
        return COMMANDS[args.command](args, cfg)
    except EXPECTED as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except sqlite3.DatabaseError as exc:  # e.g. a store damaged after it opened: refuse, no traceback
        print(f"error: {store_failure(cfg.store_path, exc)}", file=sys.stderr)
        return 2


def out(args: argparse.Namespace, data: Any, text: str) -> None:
    print(json.dumps(data) if args.json else text, flush=True)


def cmd_devices(args: argparse.Namespace, cfg: Config) -> int:
    devices = list_devices()
    out(args, devices, "\n".join(f"{'*' if d['default'] else ' '} {d['index']:>2}  {d['name']}  ({d['hostapi']}, "
                                 f"{d['channels']} in)" for d in devices) or "no input devices found")
    return 0


def cmd_status(args: argparse.Namespace, cfg: Config) -> int:
    with Store(cfg.store_path, readonly=True) as store:
        status = store.status()
        bundle = Bundle.load(cfg.model)
        policy = args.policy or str(store.get_setting("policy", cfg.policy))
        status["decisions"] = bundle.operating_point(policy, max(len(store.profiles(bundle.meta["sha256"])), 1))
    out(args, status, "\n".join(f"{k:>14}: {v}" for k, v in sorted(status.items())))
    return 0


def cmd_set_admin_password(args: argparse.Namespace, cfg: Config) -> int:
    with Store(cfg.store_path) as store:
        if args.stdin:
            set_password(store, sys.stdin.readline().rstrip("\n"))
        else:
            set_password_interactively(store)
    out(args, {"admin_password": "set", "store": str(cfg.store_path)},
        f"admin password set in {cfg.store_path}; the status page's admin actions are on")
    return 0


def listen(cfg: Config, timeout: float) -> Iterator[np.ndarray]:
    """Utterances from the microphone until the caller stops iterating or `timeout` passes."""
    stop = threading.Event()
    timer = threading.Timer(timeout, stop.set)
    timer.start()
    segmenter = Segmenter(cfg.vad)
    try:
        for block in MicSource(cfg.audio).blocks(stop):
            yield from segmenter.feed(block)
    finally:
        stop.set()
        timer.cancel()


def cmd_enroll(args: argparse.Namespace, cfg: Config) -> int:
    embedder = Embedder(cfg.model, threads=cfg.threads)
    with Store(cfg.store_path) as store:
        enroller = Enroller.for_store(store, embedder, cfg, args.name, replace=args.replace)
        if args.mic:
            print(f"Speak naturally; {cfg.enroll.target_seconds:.0f} s of speech are needed "
                  f"({enroller.progress:.0%} so far).", file=sys.stderr, flush=True)
            samples = ((f"utterance {i + 1}", a) for i, a in enumerate(listen(cfg, args.timeout)))
        else:
            samples = ((str(p), load_audio(p, allow_silent=True)) for p in args.files)
        report = (lambda fb, progress: None) if args.json else (
            lambda fb, progress: print(feedback_line(fb, progress), flush=True))
        done = enroll_samples(enroller, store, samples, report, keep_audio=args.keep_audio, until_complete=args.mic)
    more = "" if done.progress >= 1 else f" — record more: python -m device enroll {done.speaker.name} --mic"
    out(args, done.to_dict(), done.summary() + more)
    return 0


def cmd_recognize(args: argparse.Namespace, cfg: Config) -> int:
    # with [mqtt]/[webhook] configured the decision is published too (waits up to 3 s on exit)
    with Store(cfg.store_path) as store, Publisher.from_config(cfg, daemon=False) as publisher:
        recognizer = Recognizer(cfg, store, args.policy)
        claims = [args.claim] if args.command == "verify" else []
        recognizer.claimed_profiles(claims)  # an unknown claim fails before anyone is asked to speak
        recognizer.lockout.allowed(claims)  # and so does a locked-out one
        if args.session:
            return recognize_session(args, cfg, recognizer, claims, publisher)
        if args.file and len(args.file) > 1:
            return recognize_files(args, recognizer, claims, publisher)
        if args.file:
            audio, label = load_audio(args.file[0]), str(args.file[0])
        else:
            print("Listening…", file=sys.stderr, flush=True)
            audio = next(iter(listen(cfg, args.timeout)), None)
            if audio is None:
                raise AudioError(f"microphone: no speech heard within {args.timeout:.0f} s")
            label = "microphone"
        result = recognizer.recognize(audio, claims, label=label)
        out(args, result.to_dict(), result.line())
        publisher.decision(result.to_dict())
    return 0 if result.decision.accepted else 1


def recognize_session(args: argparse.Namespace, cfg: Config, recognizer: Recognizer, claims: list[str],
                      publisher: Publisher) -> int:
    """One decision on several utterances of one conversation; a file that cannot be judged is
    reported on stderr and left out of the evidence."""
    sessions = recognizer.session_tracker(gap_s=None)
    if args.file:
        utterances = ((str(p), load_audio(p)) for p in args.file)
    else:
        print("Listening…", file=sys.stderr, flush=True)
        utterances = ((f"utterance {i + 1}", a) for i, a in enumerate(listen(cfg, args.timeout)))
    result, split_at, used = None, [], []
    for label, audio in utterances:
        try:
            latest = recognizer.recognize(audio, claims, label=label, sessions=sessions)
        except (AudioError, RecognitionError) as exc:
            print(f"{label}: not used: {exc}", file=sys.stderr, flush=True)
            continue
        if result is not None and latest.session != result.session:
            split_at.append(label)
            used = []
        result = latest
        used.append(label)
    if result is None:
        raise RecognitionError("--session: none of the utterances could be judged")
    data = {**result.to_dict(), "files": used, "split_at": split_at}
    split = f"  (another speaker from {split_at[-1]}: decided on {len(used)})" if split_at else ""
    out(args, data, result.line() + split)
    publisher.decision(result.to_dict())
    return 0 if result.decision.accepted else 1


def recognize_files(args: argparse.Namespace, recognizer: Recognizer, claims: list[str], publisher: Publisher) -> int:
    """One decision per file, in order; a file that cannot be judged is reported and skipped."""
    codes = []
    for path in args.file:
        try:
            result = recognizer.recognize(load_audio(path), claims, label=str(path))
        except (AudioError, RecognitionError) as exc:
            out(args, {"file": str(path), "error": str(exc)}, f"{path}: error: {exc}")
            codes.append(2)
            continue
        out(args, {"file": str(path), **result.to_dict()}, f"{path}: {result.line()}")
        publisher.decision(result.to_dict())
        codes.append(0 if result.decision.accepted else 1)
    return max(codes)


def cmd_run(args: argparse.Namespace, cfg: Config) -> int:
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    source = FileSource(args.file, cfg.audio.block_ms, args.realtime) if args.file else MicSource(cfg.audio)

    def emit(result: Result) -> None:
        out(args, {"time": time.time(), **result.to_dict()}, result.line())

    counters = run_daemon(cfg, source, stop, args.policy, emit)
    logging.getLogger("device.daemon").info("stopped after %d utterances (%d skipped)", counters.utterances,
                                            counters.errors)
    return 0


def cmd_profiles(args: argparse.Namespace, cfg: Config) -> int:
    if args.action in ("history", "revert", "hold"):
        return profile_refreshes(args, cfg)
    if args.action == "sync":
        from device.household import sync  # paho and cryptography only where profiles are shared

        with Store(cfg.store_path) as store:
            report = sync(cfg, store, str(Bundle.load(cfg.model).meta["sha256"]), args.timeout)
        out(args, report.to_dict(), f"household sync: {report.received} on the broker, took {len(report.merged)} "
                                    f"({', '.join(report.merged) or 'none'}), removed {len(report.deleted)}, "
                                    f"{len(report.other_model)} from another model (kept, unused), rejected "
                                    f"{report.rejected}, published {report.published}, {report.seconds:.1f} s")
        return 0
    if args.action == "list":
        with Store(cfg.store_path) as store:
            speakers = store.list_speakers()
        rows = [{"name": s.name, "model": s.model, "samples": s.n_samples, "speech_seconds": round(s.speech_seconds, 2),
                 "quality": round(s.quality, 3), "updated": s.updated} for s in speakers]
        out(args, rows, "\n".join(f"{r['name']:<20} {r['samples']:>3} samples  {r['speech_seconds']:6.1f} s  "
                                  f"quality {r['quality']:.2f}  model {r['model']}" for r in rows) or "nobody enrolled")
        return 0
    if args.action == "delete":
        with Store(cfg.store_path) as store:
            if not store.delete_speaker(args.name):
                raise RecognitionError(f"no speaker named {args.name!r} in {cfg.store_path}")
        out(args, {"deleted": args.name}, f"deleted {args.name}")
        return 0
    bundle = Bundle.load(cfg.model)
    sha = str(bundle.meta["sha256"])
    with Store(cfg.store_path) as store:
        if args.action == "export":
            n = export_profiles(store, args.path, bundle.name, sha)
            out(args, {"exported": n, "path": str(args.path)}, f"exported {n} speakers to {args.path}")
        else:
            names = import_profiles(store, args.path, bundle.name, sha, replace=args.replace)
            out(args, {"imported": names}, f"imported {len(names)} speakers: {', '.join(names) or 'none'}")
    return 0


def profile_refreshes(args: argparse.Namespace, cfg: Config) -> int:
    """`profiles history|revert|hold NAME`: a profile's refreshes (device/refresh.py) and their undo."""
    with Store(cfg.store_path) as store:
        if args.action == "revert":
            reverted = revert(store, args.name, args.to)
        elif args.action == "hold":
            set_hold(store, args.name, not args.off)
        h = history(store, args.name)
    if args.action == "history":
        out(args, history_dict(h), history_text(h))
    elif args.action == "revert":
        out(args, {"name": h.speaker.name, "reverted": reverted, "active": len(h.active)},
            f"{h.speaker.name}: reverted {len(reverted)} refreshes; the profile is its {len(h.enrolment)} enrolment "
            f"samples and {len(h.active)} refreshes")
    else:
        out(args, {"name": h.speaker.name, "hold": h.hold},
            f"{h.speaker.name}: refreshes {'on hold' if h.hold else 'allowed'}")
    return 0


def cmd_assist(args: argparse.Namespace, cfg: Config) -> int:
    if not cfg.assist.upstream:
        raise ConfigError("assist: no upstream ASR service (--upstream tcp://HOST:PORT or [assist] upstream)")
    with Store(cfg.store_path) as store, Publisher.from_config(cfg, daemon=False) as publisher:
        recognizer = Recognizer(cfg, store, args.policy)
        if not recognizer.profiles():
            raise RecognitionError(f"nobody is enrolled with model {recognizer.bundle.name!r} (python -m device enroll "
                                   "NAME, or python -m device assist-enroll NAME through a satellite)")
        proxy = AssistProxy(cfg, store, recognizer, publisher, emit=lambda r: out(args, r.to_dict(), r.line()))
        serve_until_signalled(cfg.assist.listen, proxy.describe, proxy.answer, asyncio.Event())
    return 0


def cmd_assist_enroll(args: argparse.Namespace, cfg: Config) -> int:
    embedder = Embedder(cfg.model, threads=cfg.threads)
    with Store(cfg.store_path) as store:
        enroller = Enroller.for_store(store, embedder, cfg, args.name)
        done = asyncio.Event()
        enrolling = AssistEnroller(enroller, store, args.samples, done,
                                   emit=lambda fb, progress: out(args, {"speaker": args.name, **asdict(fb),
                                                                        "accepted": fb.accepted, "progress": progress},
                                                                 feedback_line(fb, progress)))
        print(f"Speak {args.samples} commands to the satellite ({cfg.assist.listen}).", file=sys.stderr, flush=True)
        serve_until_signalled(cfg.assist.listen, enrolling.describe, enrolling.answer, done)
    if not done.is_set():
        raise EnrollError(f"{args.name}: stopped before {args.samples} usable commands; nothing saved")
    return 0


def cmd_household(args: argparse.Namespace, cfg: Config) -> int:
    from device.household import init_key

    path = init_key(args.key_file)
    out(args, {"key_file": str(path)}, f"household key written to {path} (0600). Copy it to each device and set "
                                       "[household] key_file there.")
    return 0


def serve_until_signalled(uri: str, describe: Any, answer: Any, stop: asyncio.Event) -> None:
    """Serve Wyoming clients until `stop` is set or SIGTERM/SIGINT arrives."""
    async def main() -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await serve(uri, describe, answer, stop)
    asyncio.run(main())


COMMANDS = {"devices": cmd_devices, "status": cmd_status, "enroll": cmd_enroll, "verify": cmd_recognize,
            "identify": cmd_recognize, "run": cmd_run, "profiles": cmd_profiles,
            "set-admin-password": cmd_set_admin_password, "assist": cmd_assist, "assist-enroll": cmd_assist_enroll,
            "household": cmd_household}
