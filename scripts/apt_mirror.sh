#!/usr/bin/env bash
# Print the Debian mirror this machine's apt is configured with (the first non-security deb URI).
# Used by scripts/pi_check.sh for debootstrap, so no registry host is written in the project.
set -euo pipefail
uri=$( (grep -hE '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | grep -v security | head -1 | awk '{print $2}') || true)
if [ -z "$uri" ] && [ -f /etc/apt/sources.list ]; then
  uri=$(grep -hE '^deb ' /etc/apt/sources.list | grep -v security | head -1 | awk '{print $2}' || true)
fi
[ -n "$uri" ] || { echo "apt_mirror: no Debian mirror found in the apt configuration" >&2; exit 1; }
echo "$uri"
