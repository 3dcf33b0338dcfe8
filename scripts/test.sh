#!/usr/bin/env bash
# Every test. Installs what it needs (apt packages, the three venvs and .venv-peers), then runs
#   lint (ruff), tests/workstation in .venv-train, tests/device + tests/app in .venv-device,
#   then scripts/pi_check.sh (needs root: the arm64 root, qemu and binfmt_misc).
# Safe to run twice; exits non-zero when anything fails.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_apt.sh
bash scripts/setup_venvs.sh
bash scripts/bench/setup_peers.sh  # Resemblyzer: the distillation teacher's test
export PYTHONPATH=$PWD PYTHONDONTWRITEBYTECODE=1
status=0
echo "== ruff"
.venv-train/bin/ruff check --no-cache . || status=1
echo "== tests/workstation (.venv-train: tensorflow, librosa)"
.venv-train/bin/python -m pytest tests/workstation "$@" || status=1
device_tests=(tests/device)
[ -d tests/app ] && device_tests+=(tests/app)
[ -d tests/reliability ] && device_tests+=(tests/reliability)
echo "== ${device_tests[*]} (.venv-device: ai-edge-litert 1.4.0, numpy<2)"
.venv-device/bin/python -m pytest "${device_tests[@]}" "$@" || status=1
echo "== scripts/pi_check.sh (the device installed and run in an emulated arm64 Debian 12 root; times are not Pi times)"
pi_start=$SECONDS
bash scripts/pi_check.sh || status=1
echo "pi_check: $((SECONDS - pi_start)) s wall time (cold = no cached root in /var/cache/speakerid/pi-root)"
exit $status
