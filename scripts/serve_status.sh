#!/usr/bin/env bash
# Serve the status page on the LAN: streamlit run app/status.py with .venv-device.
# Usage: serve_status.sh [--port N] [--address A] [--store P] [--model D] [--config F]
#   --address defaults to 0.0.0.0 (every interface), --port to 8501; --store/--model/--config
#   default to the device config defaults (or SPEAKERID_STORE / SPEAKERID_MODEL / SPEAKERID_CONFIG).
set -euo pipefail
cd "$(dirname "$0")/.."
port=8501 address=0.0.0.0 page_args=()
while [ $# -gt 0 ]; do
  case $1 in
    --port) port=$2; shift 2 ;;
    --address) address=$2; shift 2 ;;
    --store|--model|--config) page_args+=("$1" "$2"); shift 2 ;;
    -h|--help) sed -n '2,5p' "$0"; exit 0 ;;
    *) echo "serve_status: unknown option $1" >&2; exit 2 ;;
  esac
done
[ -x .venv-device/bin/streamlit ] || bash scripts/setup_venvs.sh device
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
exec .venv-device/bin/streamlit run app/status.py --server.port "$port" --server.address "$address" \
  --server.headless true --browser.gatherUsageStats false -- "${page_args[@]}"
