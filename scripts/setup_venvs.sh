#!/usr/bin/env bash
# Build the project's virtual environments; each is rebuilt only when its requirements change.
#   .venv-train   requirements-train.txt               (tensorflow + tf_keras, librosa, ...)
#   .venv-device  requirements-device.txt, one pip call: what the Pi gets (ai-edge-litert 1.4.0, numpy<2)
#   .venv-tflite  the same with the fallback runtime (scripts/fallback-runtime.txt: tflite-runtime 2.14)
# Usage: setup_venvs.sh [train] [device] [tflite]   (default: all three)
set -euo pipefail
cd "$(dirname "$0")/.."
py311=$(command -v python3.11 || command -v python3)
want=("$@"); [ ${#want[@]} -eq 0 ] && want=(train device tflite)

make_venv() {  # name python requirement-files...
  local name=$1 py=$2; shift 2
  local stamp="$name/.stamp" sum
  sum=$( (cat "$@"; "$py" --version) | sha256sum | cut -c1-16)
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$sum" ]; then return 0; fi
  echo "setup_venvs: building $name with $("$py" --version)"
  rm -rf "$name"
  "$py" -m venv "$name"
  "$name/bin/pip" install -q --upgrade pip >/dev/null 2>&1
  local args=(); for f in "$@"; do args+=(-r "$f"); done
  "$name/bin/pip" install -q "${args[@]}" 2>&1 | grep -v "is ignored: it is neither" || true
  "$name/bin/python" -c "import numpy, soundfile, python_speech_features" || { echo "setup_venvs: $name is broken" >&2; exit 1; }
  echo "$sum" > "$stamp"
}

for w in "${want[@]}"; do
  case $w in
    train)  make_venv .venv-train "$py311" requirements-train.txt tests/requirements.txt ;;
    device) make_venv .venv-device "$py311" requirements-device.txt tests/requirements.txt ;;
    tflite)
      mkdir -p build
      bash scripts/fallback_requirements.sh build/requirements-tflite.txt
      make_venv .venv-tflite "$py311" build/requirements-tflite.txt tests/requirements.txt ;;
    *) echo "setup_venvs: unknown venv $w" >&2; exit 2 ;;
  esac
done
