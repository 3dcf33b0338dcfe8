#!/usr/bin/env bash
# One model of the shipped recipe: train on the corpus's 56 MBROLA training voices, each with 7 fixed
# resampling warps as new pseudo-speakers, plus the first 300 drawn espeak-ng voices (692 classes);
# validation and early stopping on the dev set's calibration half; then export (TFLite, checked in
# both device runtimes; decisions calibrated on the calibration half). All 1,800 drawn voices made
# every never-heard condition worse, 300 of them helped (models/default/MODEL_CARD.md, ablation).
# Usage: scripts/train_one.sh RUN OUT [extra `python -m train` flags]   (QUANT=dynamic|float|int8)
# Used by scripts/train_default.sh (the base seeds and the student) and scripts/train_arms.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
run=$1 out=$2
shift 2
py=.venv-train/bin/python
export PYTHONPATH=$PWD
mkdir -p data/corpus/splits-mb300
# awk, not `grep | head`: head closing the pipe early makes grep die of SIGPIPE, which pipefail
# turns into a failed stage (it did, now and then, with an empty log)
awk '/^mb-/ {print} /^es-/ && n++ < 300 {print}' data/corpus/splits/train.txt > data/corpus/splits-mb300/train.txt
cp data/corpus/splits/val.txt data/corpus/splits/test.txt data/corpus/splits-mb300/
start=$(date +%s)
$py -m train --data data/corpus --splits data/corpus/splits-mb300 --out "$run" --val-data data/dev \
  --val-split calib --speeds 0.82,0.88,0.94,1.0,1.06,1.13,1.2 --copies 2 --channel-p 0.2 --epochs 20 --steps 200 \
  --patience 3 --max-minutes 55 "$@"
echo "training $run took $(( $(date +%s) - start )) s"
$py -m export --run "$run" --out "$out" --quant "${QUANT:-dynamic}" --dev data/dev
