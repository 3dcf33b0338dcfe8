#!/usr/bin/env bash
# The device demo, end to end on this machine through the real audio path:
#   1. three speakers (RHVoice alan, lyubov, mikhail: people no model trains on or is calibrated
#      with) enroll from device/demo_clips;
#   2. the daemon listens to a private PulseAudio null sink's monitor through PortAudio/ALSA;
#   3. a scripted conversation (enrolled speakers and the unknown victoria) is played into the sink with
#      paplay, and each decision is printed as it happens;
#   4. if the status page exists (app/status.py), it is started over HTTPS (a self-signed certificate
#      for localhost) on the demo store and its URL printed.
# Usage: scripts/demo.sh [--model DIR]   (default models/default; SPEAKERID_MODEL also works)
# Everything lives in build/demo (recreated each run); the real home directory is not touched.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
model=${SPEAKERID_MODEL:-models/default}
[ "${1:-}" = "--model" ] && model=$2
bash scripts/setup_apt.sh
bash scripts/setup_venvs.sh device
[ -f "$model/model.json" ] || { echo "demo: no model bundle at $model (use --model DIR)" >&2; exit 1; }

demo=$repo/build/demo
if [ -f "$demo/status.pid" ]; then  # the status page of a previous run still serves the old store
  kill -- "-$(cat "$demo/status.pid")" 2>/dev/null || true
fi
rm -rf "$demo"
mkdir -p "$demo/home" "$demo/pulse"
chmod 0700 "$demo/home" "$demo/pulse"
export HOME=$demo/home PULSE_RUNTIME_PATH=$demo/pulse XDG_RUNTIME_DIR=$demo/pulse
export PULSE_SINK=speakerid_demo PULSE_SOURCE=speakerid_demo.monitor
py=$repo/.venv-device/bin/python
store=$demo/store.db
clips=device/demo_clips
common=(--model "$model" --store "$store" --policy "${SPEAKERID_POLICY:-far1}")

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait "${pids[@]}" 2>/dev/null || true; }
trap cleanup EXIT

pulseaudio -n --daemonize=no --exit-idle-time=-1 --system=false --disallow-exit \
  -L module-native-protocol-unix -L "module-null-sink sink_name=$PULSE_SINK rate=16000 channels=1" \
  --log-target=file:"$demo/pulse.log" &
pids+=($!)
for _ in $(seq 50); do pactl info >/dev/null 2>&1 && break; sleep 0.2; done
pactl info >/dev/null 2>&1 || { echo "demo: PulseAudio did not start (see $demo/pulse.log)" >&2; exit 1; }

echo "== Enrolling three speakers from $clips"
for who in alan lyubov mikhail; do
  "$py" -m device enroll "$who" --files "$clips/$who"-enroll-*.flac "${common[@]}" 2>>"$demo/enroll.log" | tail -1
done

echo "== Listening on the PulseAudio null sink monitor (device 'pulse'); playing the conversation"
"$py" -m device run --device pulse "${common[@]}" 2>"$demo/daemon.log" &
daemon=$!
pids+=($daemon)
for _ in $(seq 100); do grep -q "recording from" "$demo/daemon.log" && break; sleep 0.2; done
grep -q "recording from" "$demo/daemon.log" || { echo "demo: the daemon did not start:" >&2; tail "$demo/daemon.log" >&2; exit 1; }

conversation=(alan-test-1 lyubov-test-1 victoria-test-1 mikhail-test-1 alan-test-2 victoria-test-2 lyubov-test-2 mikhail-test-2)
for line in "${conversation[@]}"; do
  who=${line%%-*}
  [ "$who" = victoria ] && role="not enrolled" || role="enrolled"
  echo "-- $who ($role) speaks"
  paplay "$clips/$line.flac"
  sleep 1.5  # the VAD hangover closes the utterance; the decision prints meanwhile
done
kill -TERM "$daemon"
wait "$daemon" || true
echo "== Daemon stopped. Events recorded: $("$py" -c "from device.store import Store; print(Store('$store').count_events())")"

if [ -f app/status.py ] && [ -x scripts/serve_status.sh ]; then
  bash scripts/make_cert.sh --out "$demo/tls" --host localhost >"$demo/tls.log"  # HTTPS, as on the Pi
  setsid scripts/serve_status.sh --store "$store" --model "$model" --cert "$demo/tls/status.crt" \
    --key "$demo/tls/status.key" >"$demo/status.log" 2>&1 &
  echo $! > "$demo/status.pid"
  echo "== Status page: https://localhost:${SPEAKERID_STATUS_PORT:-8501}  (self-signed: $demo/tls/status.crt;" \
    "store $store; log $demo/status.log)"
fi
