#!/usr/bin/env bash
# A self-signed TLS certificate for the status page (openssl), valid for the host's names.
# Usage: make_cert.sh --out DIR [--host NAME] [--days N] [--group G]
#   writes DIR/status.crt (0644) and DIR/status.key (0600, or 0640 readable by group G), for NAME
#   (default: this host's name), NAME.local, localhost, this host's current addresses (hostname -I),
#   127.0.0.1 and ::1. An existing pair that still has 30+ days to run and names NAME is kept, so
#   running it again changes nothing.
# Prints the certificate's SHA-256 fingerprint: compare it with the one the browser shows.
set -euo pipefail
out="" host=$(hostname) days=825 group=""  # 825 days: the longest validity Apple platforms accept
while [ $# -gt 0 ]; do
  case $1 in
    --out) out=$2; shift 2 ;;
    --host) host=$2; shift 2 ;;
    --days) days=$2; shift 2 ;;
    --group) group=$2; shift 2 ;;
    -h|--help) sed -n '2,7p' "$0"; exit 0 ;;
    *) echo "make_cert: unknown option $1" >&2; exit 2 ;;
  esac
done
[ -n "$out" ] || { echo "make_cert: --out DIR is required" >&2; exit 2; }
command -v openssl >/dev/null || { echo "make_cert: openssl is not installed (apt-get install openssl)" >&2; exit 1; }
crt=$out/status.crt key=$out/status.key
if [ -f "$crt" ] && [ -f "$key" ] && openssl x509 -in "$crt" -noout -checkend $((30 * 86400)) >/dev/null 2>&1 \
   && openssl x509 -in "$crt" -noout -checkhost "$host" 2>/dev/null | grep -q "does match"; then
  echo "make_cert: keeping $crt (valid for $host)"
else
  install -d -m 0755 "$out"
  san="DNS:$host,DNS:localhost,IP:127.0.0.1,IP:::1"
  for ip in $(hostname -I 2>/dev/null); do
    case ",$san," in *",IP:$ip,"*) ;; *) san="$san,IP:$ip" ;; esac
  done
  case $host in *.*) ;; *) san="DNS:$host,DNS:$host.local,${san#DNS:$host,}" ;; esac
  umask 077
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -sha256 -nodes -days "$days" \
    -keyout "$key.new" -out "$crt.new" -subj "/CN=$host/O=speakerid status page" \
    -addext "subjectAltName=$san" -addext "basicConstraints=critical,CA:FALSE" \
    -addext "keyUsage=critical,digitalSignature" -addext "extendedKeyUsage=serverAuth" 2>/dev/null
  mv "$key.new" "$key"
  mv "$crt.new" "$crt"
  chmod 0644 "$crt"
  echo "make_cert: wrote $crt for $san"
fi
chmod 0600 "$key"
if [ -n "$group" ]; then
  chgrp "$group" "$key"
  chmod 0640 "$key"
fi
openssl x509 -in "$crt" -noout -fingerprint -sha256 | sed 's/^.*=/make_cert: SHA-256 fingerprint /'
