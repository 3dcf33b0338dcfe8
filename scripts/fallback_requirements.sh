#!/usr/bin/env bash
# Write requirements-device.txt with its LiteRT line swapped for the fallback runtime
# (scripts/fallback-runtime.txt): what .venv-tflite and a board LiteRT cannot run install.
# Usage: scripts/fallback_requirements.sh OUT
set -euo pipefail
here=$(dirname "$0")
{ grep -v '^ai-edge-litert' "$here/../requirements-device.txt"; grep -v '^#' "$here/fallback-runtime.txt"; } > "$1"
