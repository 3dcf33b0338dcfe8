#!/usr/bin/env bash
# The benchmark harness end to end on a small bundle and 20 trials per condition, without peers
# or daemon: accuracy (project + baselines), speed (ai-edge-litert, the Pi's runtime), footprint, report.
# Usage: scripts/bench/smoke.sh BUNDLE CORPUS OUT_DIR   (writes OUT_DIR/*.json and OUT_DIR/BENCHMARKS.md)
set -euo pipefail
[ $# -eq 3 ] || { echo "usage: $0 BUNDLE CORPUS OUT_DIR" >&2; exit 2; }
bundle=$(realpath "$1") corpus=$(realpath "$2") out=$(realpath -m "$3")
cd "$(dirname "$0")/../.."
export PYTHONPATH=$PWD PYTHONDONTWRITEBYTECODE=1 TF_CPP_MIN_LOG_LEVEL=2
mkdir -p "$out/trials"
for f in "$corpus"/trials_*.txt; do
  { grep '^1 ' "$f" | head -10; grep '^0 ' "$f" | head -10; } > "$out/trials/$(basename "$f")"
done
.venv-train/bin/python -m scripts.bench.accuracy --model "$bundle" --data "$corpus" --trials-dir "$out/trials" \
  --train-per-speaker 4 --gmm-components 8 --out "$out/accuracy.json" --plots "$out/plots"
.venv-device/bin/python -m scripts.bench.device_side.speed --bundle "$bundle" --runtime ai_edge_litert --reps 5 \
  --out "$out/speed_$(basename "$bundle")_ai_edge_litert.json"
.venv-train/bin/python -m scripts.bench.footprint --bundle "$bundle" --out "$out/footprint.json"
.venv-train/bin/python -m scripts.bench.report --bench "$out" --out "$out/BENCHMARKS.md" --plots-rel plots
