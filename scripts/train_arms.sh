#!/usr/bin/env bash
# Training arms compared over seeds (docs/TRAINING.md, "Comparing arms"): the shipped recipe
# (scripts/train_one.sh: train, export) with extra `python -m train` flags, once per seed, each run
# exported and calibrated on the development set's calibration half, then scored on both halves.
#   scripts/train_arms.sh NAME "SEEDS" [python -m train flags]   e.g. scripts/train_arms.sh attentive "0 1 2" --pooling attentive
# Results: build/arms/NAME-sSEED/{model.json,generalisation.json}; summary: python -m scripts.bench.arms build/arms
set -euo pipefail
cd "$(dirname "$0")/.."
name=$1 seeds=$2
shift 2
export PYTHONPATH=$PWD
for seed in $seeds; do
  out=build/arms/$name-s$seed
  [ -f "$out/generalisation.json" ] && continue  # done before: arms are resumable run by run
  start=$(date +%s)
  bash scripts/train_one.sh "runs/arms/$name-s$seed" "$out" --seed "$seed" "$@"
  echo "$(( $(date +%s) - start ))" > "$out/train_export_seconds"
  .venv-train/bin/python -m scripts.bench.generalisation --model "$out" --dev data/dev --json "$out/generalisation.json" >/dev/null
done
