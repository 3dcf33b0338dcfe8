#!/usr/bin/env bash
# Your own corpus -> a model bundle, staged like a WeSpeaker recipe (docs/TRAINING.md, "Your own corpus"):
#   0 prepare   the venvs; the corpus's layout detected and its speakers counted (train.datasets)
#   1 train     python -m train --pipeline stream: read from disk with fresh augmentation, memory
#               bounded by buffers; a seeded speaker split in the run folder when the corpus has none
#   2 export    TFLite, checked in both device runtimes; decisions calibrated on --dev (default:
#               the corpus's validation speakers)
#   3 evaluate  on the trial list you name (VoxCeleb format: `label enroll test`, e.g. VoxCeleb1-O)
# Usage: scripts/train_corpus.sh CORPUS_ROOT OUT [--trials FILE --audio-root DIR] [--dev DEV_SET]
#            [--workers N] [--run RUN] [-- python -m train flags, e.g. --epochs 40 --batch 128]
# OUT is the bundle folder (models/NAME); the run folder is --run (default runs/NAME). STAGE=N skips
# the stages before N, LAST=N stops after stage N; a stopped training continues with STAGE=1 and
# `-- --resume`.
set -euo pipefail
cd "$(dirname "$0")/.."
usage() { sed -n '2,13p' "$0" >&2; exit 2; }
[ $# -ge 2 ] || usage
corpus=$1 out=$2
shift 2
trials="" audio_root="" dev="" workers=0 run=runs/$(basename "$out")
while [ $# -gt 0 ]; do
  case $1 in
    --trials) trials=$2; shift 2 ;;
    --audio-root) audio_root=$2; shift 2 ;;
    --dev) dev=$2; shift 2 ;;
    --workers) workers=$2; shift 2 ;;
    --run) run=$2; shift 2 ;;
    --) shift; break ;;
    *) echo "train_corpus: unknown option $1" >&2; usage ;;
  esac
done
[ -z "$trials" ] || [ -n "$audio_root" ] || { echo "train_corpus: --trials needs --audio-root" >&2; exit 2; }
stage=${STAGE:-0} last=${LAST:-3}
py=.venv-train/bin/python
export PYTHONPATH=$PWD TF_CPP_MIN_LOG_LEVEL=2
clock() { echo "train_corpus: stage $1 took $(( $(date +%s) - $2 )) s"; }

if [ "$stage" -le 0 ]; then
  start=$(date +%s)
  bash scripts/setup_venvs.sh
  $py - "$corpus" <<'PY'
import sys
from train.datasets import detect_layout, list_utterances
root = sys.argv[1]
utts = list_utterances(root)
print(f"train_corpus: {root}: layout {detect_layout(root)}, {len({u.speaker for u in utts})} speakers, "
      f"{len(utts)} utterances")
PY
  clock 0 "$start"
fi
if [ "$stage" -le 1 ] && [ "$last" -ge 1 ]; then
  start=$(date +%s)
  flags=(--data "$corpus" --out "$run" --pipeline stream --epochs 20 --steps 500 --patience 3 "$@")
  if [ "$workers" -gt 1 ]; then
    PY=$py bash scripts/train_distributed.sh --workers "$workers" "${flags[@]}"
  else
    $py -m train "${flags[@]}"
  fi
  clock 1 "$start"
fi
if [ "$stage" -le 2 ] && [ "$last" -ge 2 ]; then
  start=$(date +%s)
  $py -m export --run "$run" --out "$out" --quant dynamic ${dev:+--dev "$dev"}
  clock 2 "$start"
fi
if [ "$stage" -le 3 ] && [ "$last" -ge 3 ] && [ -n "$trials" ]; then
  start=$(date +%s)
  mkdir -p "$out/eval"
  $py -m train.evaluate --model "$out" --trials "$trials" --audio-root "$audio_root" \
    --json "$out/eval/$(basename "${trials%.*}").json"
  clock 3 "$start"
fi
