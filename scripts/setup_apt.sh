#!/usr/bin/env bash
# System packages: speech engines for the corpus, PortAudio/ALSA/PulseAudio for the audio path,
# Chromium for the browser test (libatomic1: Playwright's bundled node needs it, a minimal Debian lacks it),
# Mosquitto for the MQTT integration tests (each starts its own broker on a
# loopback port), qemu-user-static + binfmt-support + debootstrap for the emulated Pi (scripts/pi_check.sh).
# Safe to run twice; a stamp skips apt when nothing changed.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
want=(sox espeak-ng mbrola rhvoice rhvoice-english rhvoice-russian rhvoice-ukrainian rhvoice-polish
      rhvoice-brazilian-portuguese rhvoice-esperanto rhvoice-kyrgyz rhvoice-macedonian rhvoice-tatar rhvoice-albanian
      klettres-data
      python3-venv libportaudio2 libsndfile1 alsa-utils pulseaudio pulseaudio-utils chromium chromium-driver libatomic1 procps mosquitto
      qemu-user-static binfmt-support debootstrap)
missing=()
for p in "${want[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
mbrola_missing=$(dpkg -l 'mbrola-*' 2>/dev/null | grep -c '^ii' || true)
if [ ${#missing[@]} -eq 0 ] && [ "$mbrola_missing" -gt 40 ]; then exit 0; fi
export DEBIAN_FRONTEND=noninteractive
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
$SUDO bash "$here/apt_components.sh"
$SUDO apt-get update -qq
voices=$(apt-cache search --names-only '^mbrola-[a-z][a-z][0-9]$' | awk '{print $1}')
$SUDO apt-get install -y -qq --no-install-recommends "${want[@]}" $voices >/dev/null
echo "setup_apt: installed ${#missing[@]} packages and $(echo "$voices" | wc -w) MBROLA voices"
