"""Benchmarks (scripts/bench/run_all.sh runs them all), in two homes by the venv they run in:

- `scripts/bench/device_side/`: what the Pi runs (speed, daemon latency, soak) in the device
  venvs (.venv-device, .venv-tflite). They import only `device/`, numpy and the standard library,
  never train/, export/ or app/ (tests/device/test_bench_imports.py checks it in .venv-device).
- `scripts/bench/*.py`: the workstation side (accuracy and its baselines, footprint, report,
  generalisation, open set) in .venv-train, and the Resemblyzer peer in .venv-peers; they may use
  train/ (`scripts/bench/trials.py`: the trial conditions every system is scored on).

This file imports nothing, so importing either side costs only that side.
"""
