#!/usr/bin/env bash
# Every benchmark, from a fresh machine, in under 30 minutes on 2 cores: builds the venvs (the
# project's three and .venv-peers), the corpus if missing, one export per quantization mode from
# the run the model was trained in (when that run is present), then
#   accuracy  project + MFCC and GMM-UBM baselines + Resemblyzer on the clean/noisy/short trials
#   speed     each bundle x each device runtime, and Resemblyzer; 1 thread, one after another
#   daemon    scripts/bench/device_side/daemon_latency.py (latency, RSS)
#   assist    scripts/bench/device_side/assist_latency.py (the Assist proxy's added delay)
#   training  throughput alone and on 2 local workers (scripts/bench/training_scale.py)
#   footprint model files, device install with/without streamlit, the peers' venv
# and rewrites docs/BENCHMARKS.md and docs/bench/det_<condition>.png.
# Env: MODEL=models/default DATA=data/corpus RUN=<the model's run> BENCH=build/bench UTTERANCES=1000
#      MODES="float32 float16 int8" (quantization modes exported from RUN into build/exports/<mode>)
set -euo pipefail
cd "$(dirname "$0")/../.."
model=${MODEL:-models/default} data=${DATA:-data/corpus} bench=${BENCH:-build/bench}
run=${RUN:-$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["trained_on"]["run"])' \
  "$model/model.json" 2>/dev/null || echo runs/default)}
export PYTHONPATH=$PWD PYTHONDONTWRITEBYTECODE=1 TF_CPP_MIN_LOG_LEVEL=2
start=$(date +%s)
step() { echo "== run_all [$(( $(date +%s) - start )) s] $*"; }

step "apt packages and venvs"
bash scripts/setup_apt.sh
bash scripts/setup_venvs.sh
bash scripts/bench/setup_peers.sh
[ -f "$data/trials_short.txt" ] || bash scripts/make_corpus.sh
mkdir -p "$bench" docs/bench
rm -f "$bench"/speed_*.json "$bench/export_failures.txt"

bundles=()
if [ -f "$run/best.weights.h5" ]; then
  for mode in ${MODES:-float32 float16 int8}; do
    out=build/exports/$mode
    if ! grep -qF "\"run\": \"$run\"" "$out/model.json" 2>/dev/null || [ "$run/best.weights.h5" -nt "$out/model.json" ]; then
      step "export $mode"
      if ! .venv-train/bin/python -m export --run "$run" --out "$out" --quant "$mode" > "$bench/export.log" 2>&1; then
        echo "$mode: $(grep '^export failed' "$bench/export.log" | tail -1)" | tee -a "$bench/export_failures.txt"
        rm -rf "$out"
        continue
      fi
      tail -1 "$bench/export.log"
    fi
    [ -f "$out/model.json" ] && ! [ "$out" -ef "$model" ] && bundles+=("$out")
  done
fi
[ -f "$model/model.json" ] || { echo "run_all: no bundle at $model (scripts/train_default.sh makes it)" >&2; exit 1; }
bundles=("$model" "${bundles[@]}")

step "accuracy: Resemblyzer embeddings (.venv-peers)"
.venv-peers/bin/python -m scripts.bench.resemblyzer_peer --data "$data" --out "$bench/resemblyzer"
step "accuracy: project and baselines"
.venv-train/bin/python -m scripts.bench.accuracy --model "$model" --data "$data" \
  --peer "Resemblyzer=$bench/resemblyzer.npz" --out "$bench/accuracy.json" --plots docs/bench

clip=$(awk 'NR==1 {print $2}' "$data/trials_clean.txt")
for b in "${bundles[@]}"; do
  for rt in ai_edge_litert:.venv-device tflite_runtime:.venv-tflite; do
    step "speed $b ${rt%%:*}"
    cpu=0; [ "$b" = "$model" ] && [ "${rt%%:*}" = ai_edge_litert ] && cpu=20  # daemon CPU idle vs talking
    "${rt#*:}/bin/python" -m scripts.bench.device_side.speed --bundle "$b" --runtime "${rt%%:*}" --audio "$data/$clip" \
      --cpu-seconds $cpu --out "$bench/speed_$(basename "$b")_${rt%%:*}.json"
  done
done

if [ -f scripts/bench/device_side/daemon_latency.py ]; then
  step "daemon"
  .venv-device/bin/python -m scripts.bench.device_side.daemon_latency --model "$model" --utterances "${UTTERANCES:-1000}" > /dev/null
  [ "$bench" -ef build/bench ] || cp build/bench/daemon.json "$bench/daemon.json"
fi

step "assist proxy"
.venv-device/bin/python -m scripts.bench.device_side.assist_latency --model "$model" --out "$bench/assist.json" > /dev/null

step "training on 1 and 2 local workers"
.venv-train/bin/python -m scripts.bench.training_scale --data "$data" --out "$bench/training_scale.json" > /dev/null

step "footprint"
.venv-train/bin/python -m scripts.bench.footprint $(printf -- "--bundle %s " "${bundles[@]}") --peers-venv .venv-peers \
  --out "$bench/footprint.json"
.venv-train/bin/python -m scripts.bench.report --bench "$bench" --out docs/BENCHMARKS.md --plots-rel bench
step "done"
