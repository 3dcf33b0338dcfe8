#!/usr/bin/env bash
# The shipped default model, staged like a WeSpeaker recipe:
#   prepare (corpus) -> train -> evaluate (Keras run) -> export (TFLite, checked in both device
#   runtimes) -> evaluate (exported bundle, device code path) -> models/default
# Usage: scripts/train_default.sh [extra `python -m train` flags]; STAGE=N skips stages before N.
set -euo pipefail
cd "$(dirname "$0")/.."
stage=${STAGE:-0}
run=${RUN:-runs/default}
out=${OUT:-models/default}
quant=${QUANT:-dynamic}
py=.venv-train/bin/python
export PYTHONPATH=$PWD
if [ "$stage" -le 0 ]; then
  bash scripts/setup_venvs.sh
  [ -f data/corpus/trials_short.txt ] || bash scripts/make_corpus.sh
fi
if [ "$stage" -le 1 ]; then
  start=$(date +%s)
  $py -m train --data data/corpus --out "$run" --max-minutes 20 "$@"
  echo "training took $(( $(date +%s) - start )) s"
fi
if [ "$stage" -le 2 ]; then
  $py -m export --run "$run" --out "$out" --quant "$quant"
fi
if [ "$stage" -le 3 ]; then
  mkdir -p "$run/eval" "$out/eval"
  for c in clean noisy short; do
    $py -m train.evaluate --model "$run" --trials "data/corpus/trials_$c.txt" --audio-root data/corpus \
      --json "$run/eval/$c.json" > /dev/null
    $py -m train.evaluate --model "$out" --trials "data/corpus/trials_$c.txt" --audio-root data/corpus \
      --json "$out/eval/$c.json" --plots "$out/eval/plots-$c" > /dev/null
  done
  $py -m train.report --run "$run" --bundle "$out"
fi
