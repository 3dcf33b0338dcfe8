#!/usr/bin/env bash
# .venv-peers: the peer systems the benchmark compares against (Resemblyzer, GE2E encoder whose
# weights ship inside its wheel). Idempotent: rebuilt only when this script changes.
# torch must be the CPU build: the local wheel (torch==2.13.0+cpu, found through pip's find-links)
# is required, because the plain `torch` wheel for Linux x86_64 pulls several GB of CUDA libraries.
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
  echo "setup_peers: no CPU-only torch 2.13.0 wheel available; refusing to install the CUDA build" >&2
  exit 1
fi
# resemblyzer's metadata asks for `typing` (a Python 2 backport that breaks 3.11): install it
# without dependencies and add what it really imports.
quiet "$pip" install -q --no-deps resemblyzer==0.1.4
quiet "$pip" install -q webrtcvad-wheels librosa "numpy<2.3" scipy soundfile
"$venv/bin/python" - <<'PY'
import torch
from resemblyzer import VoiceEncoder
assert torch.version.cuda is None, "CUDA torch build in .venv-peers"
VoiceEncoder("cpu", verbose=False)
PY
echo "$sum" > "$venv/.stamp"
