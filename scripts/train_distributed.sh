#!/usr/bin/env bash
# Train on N local workers (tf.distribute.MultiWorkerMirroredStrategy), for trying multi-worker
# training out and for tests; a real cluster runs `python -m train` on each machine with its own
# TF_CONFIG (docs/TRAINING.md).
#   scripts/train_distributed.sh --workers N [python -m train flags: --data D --out RUN [--resume] ...]
# Each worker gets a free loopback port; worker 0 is the chief and writes RUN (config, log, checkpoints,
# best weights). Worker logs and pids go to RUN/workers/. --batch is the global batch (split over the
# workers); the `python -m train` flag --workers (augmentation processes per worker) is passed through.
# If one worker fails or is killed, the others are stopped (a multi-worker run cannot continue without
# it); run the same command with --resume to continue from the last checkpoint.
set -euo pipefail
cd "$(dirname "$0")/.."
n=0
if [ "${1:-}" = "--workers" ]; then n=${2:-0}; shift 2; fi
if ! [[ "$n" =~ ^[1-9][0-9]*$ ]]; then
  echo "usage: $0 --workers N [python -m train flags]" >&2
  exit 2
fi
out=""
prev=""
for arg in "$@"; do
  [ "$prev" = "--out" ] && out=$arg
  case "$arg" in --out=*) out=${arg#--out=} ;; esac
  prev=$arg
done
[ -n "$out" ] || { echo "$0: --out RUN is required" >&2; exit 2; }
py=${PY:-.venv-train/bin/python}
export PYTHONPATH=$PWD
mkdir -p "$out/workers"
read -r -a ports <<< "$($py -c "from train.cluster import free_ports; print(*free_ports($n))")"
cluster=$(printf '"127.0.0.1:%s",' "${ports[@]}")
cluster="[${cluster%,}]"

pids=()
stop_all() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap 'stop_all; exit 130' INT TERM
for ((i = 0; i < n; i++)); do
  log="$out/workers/worker-$i.log"
  export TF_CONFIG="{\"cluster\": {\"worker\": $cluster}, \"task\": {\"type\": \"worker\", \"index\": $i}}"
  if [ "$i" = 0 ]; then
    $py -m train "$@" > >(tee "$log") 2>&1 &  # the chief's progress on the terminal too
  else
    $py -m train "$@" > "$log" 2>&1 &
  fi
  pids+=($!)
  echo "$!" > "$out/workers/worker-$i.pid"
done
echo "$n workers on ports ${ports[*]}; logs in $out/workers/"

status=0
for ((left = n; left > 0; left--)); do
  if ! wait -n; then
    status=1
    echo "a worker failed or was killed: stopping the others (continue with --resume)" >&2
    stop_all
    wait || true
    break
  fi
done
exit $status
