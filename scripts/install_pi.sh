#!/usr/bin/env bash
# Install the speaker-ID daemon and status page as systemd services on Raspberry Pi OS / Debian.
# Run as root from the repository checkout (it stays where it is):
#   sudo scripts/install_pi.sh [--user speakerid] [--device "USB"] [--cert F --key F | --http] [--runtime tflite]
# Safe to run again (after a git pull, for instance): the venv is rebuilt only when
# requirements-device.txt changes, and an existing /etc/speakerid/config.toml is kept.
# The TFLite runtime is LiteRT (ai-edge-litert, requirements-device.txt). Before anything is enabled,
# the venv's Python embeds a demo clip with the shipped model in a child process; if LiteRT cannot
# (a build that uses instructions this board's CPU lacks dies with SIGILL or SIGSEGV), the venv is
# rebuilt with the fallback runtime, tflite-runtime 2.14 (scripts/fallback-runtime.txt).
# --runtime tflite asks for the fallback directly.
# The status page is served over HTTPS with a self-signed certificate for this host's name, made
# once in /etc/speakerid/tls (scripts/make_cert.sh), or with the owner's --cert/--key (copied there);
# --http serves plain HTTP instead (the admin password then crosses the LAN in clear).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
user=speakerid
device=""
own_cert="" own_key="" http=0 runtime=litert
while [ $# -gt 0 ]; do
  case $1 in
    --user) user=$2; shift 2 ;;
    --device) device=$2; shift 2 ;;
    --cert) own_cert=$2; shift 2 ;;
    --key) own_key=$2; shift 2 ;;
    --http) http=1; shift ;;
    --runtime) runtime=$2; shift 2 ;;
    *) echo "install_pi: unknown option $1 (known: --user NAME, --device NAME|INDEX, --cert F --key F, --http, --runtime litert|tflite)" >&2
       exit 2 ;;
  esac
done
if [ -n "$own_cert$own_key" ] && { [ ! -r "$own_cert" ] || [ ! -r "$own_key" ]; }; then
  echo "install_pi: --cert and --key go together and must name readable files" >&2; exit 2
fi
case $runtime in litert|tflite) ;; *) echo "install_pi: --runtime is litert or tflite, not $runtime" >&2; exit 2 ;; esac
[ "$(id -u)" -eq 0 ] || { echo "install_pi: run as root (sudo)" >&2; exit 1; }
command -v systemctl >/dev/null || { echo "install_pi: systemd is required" >&2; exit 1; }

export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends python3 python3-venv libportaudio2 libsndfile1 alsa-utils openssl >/dev/null

# An unprivileged service user that may use the sound card and nothing else.
if ! id -u "$user" >/dev/null 2>&1; then
  useradd --system --no-create-home --home-dir /var/lib/speakerid --shell /usr/sbin/nologin "$user"
fi
usermod -a -G audio "$user"

# The device venv, in ONE pip call (a second call could upgrade numpy past what the runtimes need).
# .requirements-pi keeps what it was built from; .venv-device-litert-failed remembers that LiteRT could not run
# here, so a re-run goes straight to the fallback until requirements-device.txt changes.
venv="$repo/.venv-device"
build_venv() {  # requirements file
  if ! cmp -s "$1" "$venv/.requirements-pi" || [ "$(cat "$venv/.python-pi" 2>/dev/null)" != "$(python3 --version)" ]; then
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q -r "$1"
    cp "$1" "$venv/.requirements-pi"
    python3 --version > "$venv/.python-pi"
  fi
}
runs_model() {  # the runtime embeds a demo clip with the shipped model, in a child process
  (cd "$repo" && "$venv/bin/python" -c 'from device.audio import load_audio; from device.embedder import Embedder; e = Embedder("models/default"); e.embed(load_audio("device/demo_clips/alan-test-1.flac")); print(e.runtime.name, e.runtime.version)')
}
fallback=$(mktemp); trap 'rm -f "$fallback"' EXIT
bash "$repo/scripts/fallback_requirements.sh" "$fallback"
failed_for=$(sha256sum < "$repo/requirements-device.txt" | cut -c1-16)
[ "$(cat "$venv-litert-failed" 2>/dev/null)" = "$failed_for" ] && runtime=tflite
if [ "$runtime" = litert ]; then
  build_venv "$repo/requirements-device.txt"
  if ! used=$(runs_model); then
    echo "install_pi: ai-edge-litert cannot run the model on this CPU; installing the fallback runtime (tflite-runtime 2.14)" >&2
    echo "$failed_for" > "$venv-litert-failed"
    runtime=tflite
  fi
fi
if [ "$runtime" = tflite ]; then
  build_venv "$fallback"
  used=$(runs_model) || { echo "install_pi: neither ai-edge-litert nor tflite-runtime runs the model on this CPU" >&2; exit 1; }
fi
echo "install_pi: the device runs the model with $used"
"$venv/bin/python" -c "import device.sources, device.store, device.embedder" || { echo "install_pi: the venv is broken" >&2; exit 1; }
chmod -R a+rX "$repo"

config=/etc/speakerid/config.toml
if [ ! -f "$config" ]; then
  install -d -m 0755 /etc/speakerid
  cat > "$config" <<TOML
# speakerid daemon configuration (see device/config.py for every key).
model = "$repo/models/default"
store = "/var/lib/speakerid/store.db"
policy = "far1"

[audio]
device = "$device"

# Home Assistant / MQTT and a signed webhook (README, "Home Assistant, MQTT and webhooks"). Secret
# files must be 0600 and readable by the service user:
#   printf '%s\n' 'PASSWORD' | sudo install -m 0600 -o $user /dev/stdin /etc/speakerid/mqtt.pass
# [mqtt]
# host = "homeassistant.local"
# username = "speakerid"
# password_file = "/etc/speakerid/mqtt.pass"
# [webhook]
# url = "https://example.lan/hooks/speakerid"
# secret_file = "/etc/speakerid/webhook.secret"

# Several devices in one home share their profiles (docs/RELIABILITY.md): one device runs
#   python -m device household init --key-file /etc/speakerid/household.key
# and the file (0600, owned by $user) is copied to the others.
# [household]
# key_file = "/etc/speakerid/household.key"
# room = "kitchen"

# Home Assistant's Assist: a Wyoming speech-to-text proxy that verifies the speaker (docs/ASSIST.md).
# With an upstream set, re-run install_pi.sh: it enables speakerid-assist.service.
# [assist]
# listen = "tcp://0.0.0.0:10350"
# upstream = "tcp://127.0.0.1:10300"
# tag = true
TOML
  chmod 0644 "$config"
fi

# The status page's TLS certificate: the owner's, or a self-signed one for this host's name.
tls=/etc/speakerid/tls
install -d -m 0755 /etc/speakerid "$tls"
if [ -n "$own_cert" ]; then
  install -m 0644 "$own_cert" "$tls/status.crt"
  install -m 0640 -g "$user" "$own_key" "$tls/status.key"
  echo "install_pi: the status page uses your certificate ($own_cert)"
elif [ "$http" = 0 ]; then
  bash "$repo/scripts/make_cert.sh" --out "$tls" --host "$(hostname)" --group "$user"
fi

for unit in speakerid speakerid-status speakerid-assist; do
  sed -e "s|@REPO@|$repo|g" -e "s|@USER@|$user|g" -e "s|@CONFIG@|$config|g" -e "s|@TLS@|$tls|g" \
    -e "s|@HTTP@|$http|g" "$repo/scripts/systemd/$unit.service" > "/etc/systemd/system/$unit.service"
done
# Without a running systemd (an image being built in a chroot, scripts/pi_check.sh) the units are
# enabled for the next boot; on a running Pi they are started now as well.
now=--now
if [ ! -d /run/systemd/system ]; then
  now=""
  echo "install_pi: systemd is not running here (chroot or image build): units enabled, they start at boot"
fi
systemctl daemon-reload
systemctl enable $now speakerid.service
if [ -x "$repo/scripts/serve_status.sh" ]; then
  systemctl enable $now speakerid-status.service
else
  echo "install_pi: scripts/serve_status.sh not found; status page service not started"
fi
# The Assist proxy runs only where the config names its upstream ASR service.
if (cd "$repo" && "$venv/bin/python" -c 'import sys; from device.config import Config; sys.exit(not Config.load(sys.argv[1]).assist.upstream)' "$config"); then
  systemctl enable $now speakerid-assist.service
  echo "install_pi: Assist proxy enabled (docs/ASSIST.md)"
else
  systemctl disable speakerid-assist.service >/dev/null 2>&1 || true
fi
if [ "$http" = 1 ]; then
  echo "install_pi: status page on http://$(hostname).local:8501 (plain HTTP, as asked)"
else
  echo "install_pi: status page on https://$(hostname).local:8501; trust $tls/status.crt on your devices (README," \
    "'The status page over HTTPS'); its $(openssl x509 -in "$tls/status.crt" -noout -fingerprint -sha256)"
fi
echo "install_pi: installed. Enroll with:"
echo "  cd $repo && sudo -u $user $venv/bin/python -m device enroll NAME --mic --config $config"
echo "  journalctl -u speakerid -f    # decisions as they happen"
