"""Regenerate docs/BENCHMARKS.md from the JSON the benchmark steps left in build/bench/.

    python -m scripts.bench.report --bench build/bench --out docs/BENCHMARKS.md --plots-rel bench

Reads accuracy.json, speed_*.json, resemblyzer.json, footprint.json, daemon.json, assist.json and
training_scale.json (each optional except accuracy.json); sections whose JSON is missing say so
instead of guessing.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
from datetime import UTC, datetime
from pathlib import Path

from device.bundle import Bundle

MIB = 2**20


def _load(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.exists() else None


def _mib(n: int | None) -> str:
    return "n/a" if n is None else f"{n / MIB:.1f} MiB" if n >= MIB else f"{n / 1024:.0f} KiB"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)] + ["| " + " | ".join(r) + " |" for r in rows]


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.machine()


def project_name(acc: dict) -> str:
    """The project's row scored the way its bundle tells the device to score (its calibration's choice)."""
    name = "project (AS-norm)" if Bundle.load(acc["model"]).scoring == "asnorm" else "project (cosine)"
    return name if name in acc["systems"] else next(iter(acc["systems"]))


def headline_speed(speeds: list[dict], model: str) -> dict | None:
    """The shipped bundle in ai-edge-litert (what the Pi runs), else the first measurement."""
    for s in speeds:
        if Path(s["bundle"]).resolve() == Path(model).resolve() and s["runtime"] == "ai_edge_litert":
            return s
    return speeds[0] if speeds else None


def headline(acc: dict, speed: dict | None, peer: dict | None, fp: dict | None) -> list[str]:
    conds = acc["conditions"]
    rows = [[name] + [f"{acc['systems'][name][c]['eer']:.2f}" for c in conds] for name in acc["systems"]]
    out = ["## Headline", "", "EER (%) on the same trial lists, lower is better:", ""]
    out += _table(["system"] + conds, rows) + [""]
    if speed and peer:
        ratio = peer["ms_per_3s_median"] / speed["ms_per_3s_median"]
        ours, theirs = speed["pi"]["macs_per_3s_utterance"], peer["macs_per_3s_utterance"]
        verdict = "meets" if ratio >= 30 else "misses"
        out.append(f"- **Speed:** {speed['ms_per_3s_median']:.1f} ms vs Resemblyzer {peer['ms_per_3s_median']:.1f} ms per "
                   f"3-s utterance (features + embedding, 1 thread, same machine and run): the project is "
                   f"**{ratio:.1f}x faster** ({verdict} the 30x target). In arithmetic the gap is larger: "
                   f"{ours / 1e6:.0f} M vs {theirs / 1e6:.0f} M multiply-accumulates per utterance "
                   f"(**{theirs / ours:.0f}x fewer**); MFCC extraction alone takes {speed['features_ms_median']:.1f} ms "
                   "of the project's time.")
    if fp and fp.get("bundles") and fp.get("peers"):
        model_b, weights_b = fp["bundles"][0]["model_bytes"], fp["peers"]["resemblyzer_weights_bytes"]
        lean, peers = fp["device"]["install_without_streamlit_bytes"], fp["peers"]["site_packages_bytes"]
        out.append(f"- **Footprint:** model {_mib(model_b)} vs Resemblyzer weights {_mib(weights_b)} "
                   f"(**{weights_b / model_b:.0f}x smaller**); runtime install without streamlit {_mib(lean)} vs the "
                   f"peer's venv {_mib(peers)} (**{peers / lean:.1f}x smaller**).")
    return out + [""]


def accuracy_section(acc: dict, plots_rel: str | None) -> list[str]:
    conds = acc["conditions"]
    header = ["system"] + [f"{c} EER % / minDCF(0.01)" for c in conds]
    rows = [[name] + [f"{v[c]['eer']:.2f} / {v[c]['min_dcf_p01']:.3f}" for c in conds]
            for name, v in acc["systems"].items()]
    any_sys = next(iter(acc["systems"].values()))
    counts = ", ".join(f"{c}: {any_sys[c]['n_target']} target / {any_sys[c]['n_nontarget']} non-target" for c in conds)
    meta = _load(Path(acc["model"]) / "model.json") or {}
    origin = f" (run `{meta['trained_on']['run']}`, {meta.get('quantization')})" if "trained_on" in meta else ""
    out = ["## Accuracy", "", f"Trials ({counts}); model `{acc['model']}`{origin}.", ""] + _table(header, rows) + [""]
    if plots_rel:
        out += [f"![DET {c}]({plots_rel}/det_{c}.png)" for c in conds] + [""]
    return out


def speed_section(speeds: list[dict], peer: dict | None, failures: list[str]) -> list[str]:
    out = ["## Speed (1 thread, per 3-s utterance: MFCC/preprocessing + embedding)", ""]
    out += [f"Not measured, the export was refused: {f}" for f in failures] + ([""] if failures else [])
    rows = [[f"project `{Path(s['bundle']).name}` ({s['quantization']})", f"{s['runtime']} {s['runtime_version']}",
             f"{s['ms_per_3s_median']:.2f}", f"{s['rtf']:.4f}"] for s in speeds]
    if peer:
        rows.append(["Resemblyzer 0.1.4", f"torch {peer['torch']}", f"{peer['ms_per_3s_median']:.2f}",
                     f"{peer['ms_per_3s_median'] / 3000:.4f}"])
    out += _table(["system", "runtime", "median ms", "real-time factor"], rows) + [""]
    loads = [s["load_average_1min"] for s in speeds if "load_average_1min" in s]
    if loads:
        out += [f"1-minute load average while timing: {min(loads):.1f}-{max(loads):.1f} on {os.cpu_count()} cores "
                "(a load above the core count means other work shared the CPU and the times above are pessimistic).", ""]
    cpu = next((s["cpu_listening"] for s in speeds if "cpu_listening" in s), None)
    if cpu:
        out += [f"Daemon CPU load (one core, real-time input, /proc/self/stat): **{cpu['idle_cpu_pct']} %** idle-listening "
                f"to room noise, **{cpu['talking_cpu_pct']} %** with someone talking continuously "
                f"({cpu['talking_utterances']} utterances in {cpu['seconds_each']:.0f} s).", ""]
    return out


def pi_section(speed: dict | None, peer: dict | None) -> list[str]:
    if not speed:
        return []
    pi = speed["pi"]
    m = pi["macs_per_window"]
    g = pi["assumed_gmacs"]
    return ["## Raspberry Pi estimate (an estimate, not a measurement)", "",
            f"One window costs {m['total'] / 1e6:.2f} M multiply-accumulates "
            f"(conv {m['conv'] / 1e6:.2f} M, LSTM {m['lstm'] / 1e6:.2f} M, dense {m['dense'] / 1e6:.3f} M), counted from "
            f"the architecture in model.json. Streaming ({pi['windows_per_audio_second']:.2f} windows per second of audio) "
            f"costs {pi['macs_per_audio_second'] / 1e6:.1f} M MAC per second of audio; a 3-s utterance "
            f"{pi['macs_per_3s_utterance'] / 1e6:.1f} M MAC ({pi['windows_per_3s_utterance']} windows).",
            "",
            f"Assumption: single-thread TFLite sustains **{g['pi4']} GMAC/s on a Pi 4** (Cortex-A72 at 1.8 GHz; about "
            "1/8 of its NEON fp32 peak of 8 MAC/cycle, conservative for batch-1 conv + LSTM) and "
            f"**{g['pi5']} GMAC/s on a Pi 5** (Raspberry Pi's launch statement of 2-3x the Pi 4's CPU speed). "
            f"This machine measured {speed['effective_gmacs_here']} GMAC/s effective including MFCC and Python overhead.",
            "",
            *_table(["device", "model real-time factor (streaming)", "model ms per 3-s utterance"],
                    [["Pi 4", f"{pi['pi4_rtf']:.4f}", f"{pi['pi4_ms_per_3s']:.1f}"],
                     ["Pi 5", f"{pi['pi5_rtf']:.4f}", f"{pi['pi5_ms_per_3s']:.1f}"]]),
            "", f"MFCC extraction (numpy FFTs; {speed['features_ms_median']:.1f} ms per 3 s here) and interpreter overhead "
            "come on top. "
            + (f"Under the same assumption Resemblyzer's {peer['macs_per_3s_utterance'] / 1e6:.0f} M MAC per 3-s utterance "
               f"would take about {peer['macs_per_3s_utterance'] / (g['pi4'] * 1e6):.0f} ms on a Pi 4 and "
               f"{peer['macs_per_3s_utterance'] / (g['pi5'] * 1e6):.0f} ms on a Pi 5." if peer else ""), ""]


def footprint_section(fp: dict | None) -> list[str]:
    if not fp:
        return ["## Footprint", "", "not measured", ""]
    rows = [[f"model `{Path(b['bundle']).name}` ({b['quantization']})", _mib(b["model_bytes"]),
             f"bundle with cohort {_mib(b['bundle_bytes'])}"] for b in fp["bundles"]]
    d = fp["device"]
    rows += [["device install (requirements-device.txt)", _mib(d["install_bytes"]), f"python {d['python']}"],
             ["device install without streamlit", _mib(d["install_without_streamlit_bytes"]),
              f"streamlit pulls {len(d['streamlit_only'])} distributions"]]
    if fp.get("peers"):
        p = fp["peers"]
        rows += [["peers' venv (torch CPU + Resemblyzer)", _mib(p["site_packages_bytes"]), f"torch {_mib(p['torch_bytes'])}"],
                 ["Resemblyzer weights (pretrained.pt)", _mib(p["resemblyzer_weights_bytes"]), ""]]
    return ["## Footprint", ""] + _table(["what", "size", "note"], rows) + [""]


def frontend_section(speed: dict | None, daemon: dict | None) -> list[str]:
    """The MFCC frontend per second of audio against python_speech_features (the same numbers), the
    per-utterance breakdown, and what the streamed daemon leaves for the end of speech."""
    out = ["## Frontend and streaming", ""]
    if speed and "features_ms_per_audio_s" in speed:
        f, ref, b = speed["features_ms_per_audio_s"], speed["features_reference_ms_per_audio_s"], speed["breakdown_ms_per_3s_min"]
        out += [f"- **MFCC frontend** (`device/features.py`, 1 thread, per second of audio, per-call minimum / median): "
                f"**{f['min']:.3f}** / {f['median']:.3f} ms; python_speech_features computing the same numbers (what the "
                f"frontend was): {ref['min']:.3f} / {ref['median']:.3f} ms (**{ref['min'] / f['min']:.1f}x**).",
                f"- **Per 3-s utterance** ({speed['runtime']}, {speed['quantization']}, per-call minima): features "
                f"{b['features']:.2f} ms, windows through the model {b['windows']:.2f} ms, the rest {b['rest']:.2f} ms."]
    if daemon and "latency_cpu_ms" in daemon:
        lat, cpu = daemon["latency_ms"], daemon["latency_cpu_ms"]
        out.append(f"- **End of speech -> stored decision** (streamed daemon, {daemon['decisions']} utterances): "
                   f"wall median {lat['median']} ms / p95 {lat['p95']} ms; CPU time median {cpu['median']} ms / "
                   f"p95 {cpu['p95']} ms (1-minute load {daemon.get('load_average_1min')}). With the bundle's norm "
                   "'none' only the end-aligned window is left for the end of speech; with 'cmn'/'cmvn' every window "
                   "waits for the utterance mean (device/streaming.py).")
    return out + [""] if len(out) > 2 else []


def daemon_section(daemon: dict | None) -> list[str]:
    if not daemon:
        return ["## Daemon", "", "not measured (scripts/bench/device_side/daemon_latency.py did not run)", ""]
    lat = daemon["latency_ms"]
    rss = daemon["rss_mb_by_decisions"]
    return ["## Daemon (scripts/bench/device_side/daemon_latency.py)", "",
            f"{daemon['decisions']} decisions on {daemon['utterances_in']} utterances of {daemon['utterance_seconds']} s "
            f"({daemon.get('runtime')}, {daemon.get('quantization')}): end-of-utterance to stored decision "
            f"median {lat['median']} ms, p95 {lat['p95']} ms, max {lat['max']} ms (plus a VAD hangover of "
            f"{daemon['vad_hangover_ms']} ms); RSS {min(rss.values())}-{max(rss.values())} MB; "
            f"{daemon['realtime_factor']}x faster than real time.", ""]


def assist_section(assist: dict | None) -> list[str]:
    lines = ["## Assist proxy (scripts/bench/device_side/assist_latency.py)", ""]
    if assist is None:
        return lines + ["Not measured: `python -m scripts.bench.device_side.assist_latency` writes assist.json.", ""]
    return lines + [f"Delay the Wyoming proxy (`python -m device assist`, docs/ASSIST.md) adds between the client's "
                    f"`audio-stop` and the one the upstream ASR receives, for a {assist['command_seconds']:.0f}-s "
                    f"command of an enrolled voice (VAD, embedding, session decision, forwarding; loopback, one "
                    f"thread): median {assist['added_ms_median']} ms, p95 {assist['added_ms_p95']} ms, max "
                    f"{assist['added_ms_max']} ms over {assist['commands']} commands (1-minute load "
                    f"{assist['load_average_1min']}).", ""]


def training_section(scale: dict | None) -> list[str]:
    lines = ["## Training on several workers (scripts/bench/training_scale.py)", ""]
    if scale is None:
        return lines + ["Not measured: `python -m scripts.bench.training_scale` writes training_scale.json.", ""]
    one = next((r for r in scale["runs"] if r["workers"] == 1), scale["runs"][0])
    rows = [[str(r["workers"]), f"{r['examples_per_s']:.0f}", f"{r['examples_per_s'] / one['examples_per_s']:.2f}x",
             f"{r['bank_seconds']:.0f}", f"{r['wall_seconds']:.0f}", f"{r['final_loss']:.3f}"] for r in scale["runs"]]
    return lines + [f"{scale['voices']} recorded voices, global batch {scale['global_batch']}, {scale['steps']} steps "
                    f"x {scale['epochs']} epochs, local workers on loopback ports sharing this machine's "
                    f"{scale['cores']} cores (so this shows correctness and overhead, not a cluster's speed-up; "
                    "docs/TRAINING.md says what to expect on several machines).", ""] + _table(
        ["workers", "examples/s (after epoch 1)", "vs 1", "augmentation bank s (per worker)", "wall s",
         "final loss"], rows) + [""]


def render(bench: Path, plots_rel: str | None) -> str:
    acc = _load(bench / "accuracy.json")
    if acc is None:
        raise SystemExit(f"{bench}/accuracy.json is missing: run scripts/bench/accuracy.py first")
    speeds = [json.loads(p.read_text()) for p in sorted(bench.glob("speed_*.json"))]
    peer, fp, daemon = _load(bench / "resemblyzer.json"), _load(bench / "footprint.json"), _load(bench / "daemon.json")
    speed = headline_speed(speeds, acc["model"])
    lines = ["# Benchmarks", "",
             f"Generated by `scripts/bench/run_all.sh` on {datetime.now(UTC):%Y-%m-%d} ({cpu_model()}, "
             "1 thread for every timing); "
             "do not edit by hand. Peers run from their own venv (`.venv-peers`, CPU-only torch); every system is "
             "scored with `train/metrics.py` on the same trial lists. The project row scores as the device does "
             f"({project_name(acc)}).", ""]
    lines += headline(acc, speed, peer, fp)
    lines += accuracy_section(acc, plots_rel)
    lines += ["Baselines (scripts/bench/baselines.py) learn only from the training speakers: MFCC mean+std is "
              "z-normalised with training statistics and compared by cosine; the GMM-UBM is MAP-adapted (means, "
              "relevance 16) per enrollment utterance and scores the average frame log-likelihood ratio.", ""]
    failed = bench / "export_failures.txt"
    failures = failed.read_text().splitlines() if failed.exists() else []
    lines += speed_section(speeds, peer, failures) + frontend_section(speed, daemon) + pi_section(speed, peer)
    lines += footprint_section(fp) + daemon_section(daemon) + assist_section(_load(bench / "assist.json"))
    lines += training_section(_load(bench / "training_scale.json"))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bench", default="build/bench", help="folder with the JSON results")
    p.add_argument("--out", default="docs/BENCHMARKS.md")
    p.add_argument("--plots-rel", help="DET plot folder relative to --out (omit: no images)")
    a = p.parse_args(argv)
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(render(Path(a.bench), a.plots_rel))
    print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
