#!/usr/bin/env bash
# The full soak: 10 000 utterances (UTTERANCES=...) through FileSource into the daemon loop, RSS,
# descriptors and events sampled every 500; writes build/bench/soak.json and the curve into
# docs/RELIABILITY.md (between the soak markers). Exits non-zero when a check fails.
# Env: MODEL=models/default (falls back to the tests' tiny bundle when absent) UTTERANCES=10000
set -euo pipefail
cd "$(dirname "$0")/../.."
export PYTHONPATH=$PWD PYTHONDONTWRITEBYTECODE=1
model=${MODEL:-models/default}
[ -f "$model/model.json" ] || model=build/test-assets/bundle
[ -f "$model/model.json" ] || { echo "soak: no bundle at models/default or build/test-assets/bundle (run the tests once)" >&2; exit 2; }
mkdir -p build/bench
.venv-device/bin/python -m scripts.bench.device_side.soak --model "$model" --utterances "${UTTERANCES:-10000}" --every 500 \
  --out build/bench/soak.json --doc docs/RELIABILITY.md
