#!/usr/bin/env bash
# Export a run in all four quantization modes (each checked in both device runtimes) and print
# the comparison table. Usage: scripts/export_modes.sh [RUN_DIR] [OUT_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
run=${1:-runs/default}
out=${2:-build/exports}
export PYTHONPATH=$PWD
for mode in float32 float16 dynamic int8; do
  .venv-train/bin/python -m export --run "$run" --out "$out/$mode" --quant "$mode" 2>&1 | grep -E "^(wrote|export failed|tflite_runtime|ai_edge_litert)" || true
done
.venv-train/bin/python -m export.table "$out"/*/ | tee "$out/modes.md"
