#!/usr/bin/env bash
# Build the project's virtual environments; each is rebuilt only when its requirements change.
#   .venv-train   requirements-train.txt               (tensorflow + tf_keras, librosa, ...)
#   .venv-device  requirements-device.txt, one pip call (tflite-runtime 2.14 + numpy<2 on 3.11)
#   .venv-litert  requirements-device.txt on Python >= 3.12 (ai-edge-litert + numpy 2) when such a
#                 Python exists, else on 3.11 with tflite-runtime swapped for ai-edge-litert.
# Usage: setup_venvs.sh [train] [device] [litert]   (default: all three)
set -euo pipefail
cd "$(dirname "$0")/.."
py311=$(command -v python3.11 || command -v python3)
want=("$@"); [ ${#want[@]} -eq 0 ] && want=(train device litert)

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
    litert)
      py312=""
      for c in python3.12 python3.13 "$HOME"/.pyenv/versions/3.1[23]*/bin/python3; do
        if "$c" -c 'import sys, venv; assert sys.version_info >= (3, 12)' >/dev/null 2>&1; then py312=$c; break; fi
      done
      if [ -n "$py312" ]; then
        make_venv .venv-litert "$py312" requirements-device.txt tests/requirements.txt
      else
        mkdir -p build; sed -e 's/^tflite-runtime.*/ai-edge-litert==2.3.0/' requirements-device.txt > build/requirements-litert-py311.txt
        make_venv .venv-litert "$py311" build/requirements-litert-py311.txt tests/requirements.txt
      fi ;;
    *) echo "setup_venvs: unknown venv $w" >&2; exit 2 ;;
  esac
done
