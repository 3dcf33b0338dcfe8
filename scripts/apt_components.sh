#!/usr/bin/env bash
# Enable Debian's contrib and non-free components (MBROLA voices live there), idempotently.
# The mirror is read from this machine's own apt configuration; no host is written here.
set -euo pipefail
target=/etc/apt/sources.list.d/speakerid-contrib.sources
[ -f "$target" ] && exit 0
uri=$( (grep -hE '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | grep -v security | head -1 | awk '{print $2}') || true)
if [ -z "$uri" ] && [ -f /etc/apt/sources.list ]; then
  uri=$(grep -hE '^deb ' /etc/apt/sources.list | grep -v security | head -1 | awk '{print $2}')
fi
[ -n "$uri" ] || { echo "apt_components: no Debian mirror found in the apt configuration" >&2; exit 1; }
codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-bookworm}")
cat > "$target" <<SRC
Types: deb
URIs: $uri
Suites: $codename
Components: contrib non-free
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
echo "apt_components: enabled contrib non-free from the configured mirror"
