#!/usr/bin/env bash
# Serve the status page on the LAN over HTTPS: streamlit run app/status.py with .venv-device.
# Usage: serve_status.sh [--port N] [--address A] [--cert F --key F | --http] [--store P] [--model D] [--config F]
#   --address defaults to 0.0.0.0 (every interface), --port to 8501; --store/--model/--config
#   default to the device config defaults (or SPEAKERID_STORE / SPEAKERID_MODEL / SPEAKERID_CONFIG).
#   TLS by default (the admin password and scores must not cross the LAN in clear): the certificate
#   and key come from --cert/--key, else SPEAKERID_TLS_CERT/SPEAKERID_TLS_KEY, else
#   /etc/speakerid/tls/status.{crt,key} (scripts/install_pi.sh makes them; scripts/make_cert.sh
#   makes a pair anywhere). Plain HTTP only when asked: --http or SPEAKERID_HTTP=1.
set -euo pipefail
cd "$(dirname "$0")/.."
port=8501 address=0.0.0.0 page_args=()
cert=${SPEAKERID_TLS_CERT:-/etc/speakerid/tls/status.crt}
key=${SPEAKERID_TLS_KEY:-/etc/speakerid/tls/status.key}
http=${SPEAKERID_HTTP:-0}
while [ $# -gt 0 ]; do
  case $1 in
    --port) port=$2; shift 2 ;;
    --address) address=$2; shift 2 ;;
    --cert) cert=$2; shift 2 ;;
    --key) key=$2; shift 2 ;;
    --http) http=1; shift ;;
    --store|--model|--config) page_args+=("$1" "$2"); shift 2 ;;
    -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
    *) echo "serve_status: unknown option $1" >&2; exit 2 ;;
  esac
done
tls=()
if [ "$http" = 1 ]; then
  echo "serve_status: plain HTTP as asked (--http / SPEAKERID_HTTP=1): the admin password crosses the network in clear" >&2
else
  for f in "$cert" "$key"; do
    [ -r "$f" ] || { echo "serve_status: TLS certificate or key $f is missing or unreadable; make a pair with" \
      "scripts/make_cert.sh --out DIR and pass --cert DIR/status.crt --key DIR/status.key, or serve plain HTTP" \
      "with --http" >&2; exit 2; }
  done
  tls=(--server.sslCertFile "$cert" --server.sslKeyFile "$key")
fi
[ -x .venv-device/bin/streamlit ] || bash scripts/setup_venvs.sh device
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
exec .venv-device/bin/streamlit run app/status.py --server.port "$port" --server.address "$address" \
  --server.headless true --browser.gatherUsageStats false "${tls[@]}" -- "${page_args[@]}"
