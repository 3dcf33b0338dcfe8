#!/usr/bin/env bash
# Regenerate the golden vectors in tests/golden/ (mfcc.npy, embedding.npy, golden.json) for the
# current models/default (or --model DIR), in .venv-device (ai-edge-litert 1.4.0, the Pi's runtime),
# then check them in .venv-tflite (the fallback runtime) too. Run it after retraining the model; quick and idempotent
# (same clip + same model -> byte-identical files).
# The clip (tests/golden/clip.flac) is rendered only when missing or with --new-clip: an RHVoice
# voice of the development set's report half (not a training speaker: the model is trained on
# MBROLA + espeak-ng voices; not a calibration speaker either).
# Usage: scripts/make_golden.sh [--model DIR] [--new-clip]
set -euo pipefail
cd "$(dirname "$0")/.."
model=models/default
new_clip=0
while [ $# -gt 0 ]; do
  case $1 in
    --model) model=$2; shift 2 ;;
    --new-clip) new_clip=1; shift ;;
    *) echo "make_golden: unknown option $1 (known: --model DIR, --new-clip)" >&2; exit 2 ;;
  esac
done
clip=tests/golden/clip.flac
if [ ! -f "$clip" ] || [ $new_clip -eq 1 ]; then
  command -v RHVoice-test >/dev/null || { echo "make_golden: RHVoice-test missing; run scripts/setup_apt.sh" >&2; exit 1; }
  tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
  echo "Golden vectors are checked on every device." | RHVoice-test -p lyubov -o "$tmp/raw.wav"
  sox -R -q "$tmp/raw.wav" -r 16000 -c 1 -b 16 "$clip" silence 1 0.05 0.1% reverse silence 1 0.05 0.1% reverse pad 0.2 0.2
  echo "make_golden: rendered $clip (RHVoice lyubov)"
fi
bash scripts/setup_venvs.sh device tflite
export PYTHONPATH=$PWD
.venv-device/bin/python tests/golden/golden.py make --model "$model"
.venv-device/bin/python tests/golden/golden.py check --model "$model"
.venv-tflite/bin/python tests/golden/golden.py check --model "$model"
