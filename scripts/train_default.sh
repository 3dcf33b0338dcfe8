#!/usr/bin/env bash
# The shipped default model, staged like a WeSpeaker recipe:
#   0 prepare: the training corpus (MBROLA voices + 2,000 drawn espeak-ng voices; RHVoice held out)
#     and the development set (RHVoice + KLettres people, never trained on)
#   1 the teacher: three seeds of the base recipe (scripts/train_one.sh), exported, and their
#     ensemble's embeddings of every training item (python -m train.teacher, two shards in parallel)
#   2 the student: the base recipe at seed 0, distilled from that ensemble (InfoNCE, weight 1),
#     exported and calibrated -> models/default. The student of three seeds beat the base recipe
#     over three seeds of each (docs/TRAINING.md, "A seed ensemble as the teacher").
#   3 evaluate: in-domain corpus test split (Keras run and bundle), then the dev set's report half
#     (scripts/eval_dev.sh -> docs/GENERALISATION.md)
# Usage: scripts/train_default.sh [extra `python -m train` flags for the student]; STAGE=N skips
# stages before N, LAST=N stops after stage N. Stage 1 keeps what it made (build/default/base-sN,
# data/teacher-default-N.npz) and skips it when run again.
set -euo pipefail
cd "$(dirname "$0")/.."
stage=${STAGE:-0}
last=${LAST:-3}
run=${RUN:-runs/default}
out=${OUT:-models/default}
py=.venv-train/bin/python
export PYTHONPATH=$PWD
bases=(build/default/base-s0 build/default/base-s1 build/default/base-s2)
teacher=data/teacher-default-0.npz,data/teacher-default-1.npz
if [ "$stage" -le 0 ]; then
  bash scripts/setup_venvs.sh
  [ -f data/corpus/trials_short.txt ] || bash scripts/make_corpus.sh --utts 32 --espeak-voices 2000 --espeak-utts 10 \
    --split 0.9,0.04,0.06
  [ -f data/dev/summary.json ] || bash scripts/make_devset.sh --out data/dev
fi
if [ "$stage" -le 1 ] && [ "$last" -ge 1 ]; then
  start=$(date +%s)
  for seed in 0 1 2; do
    [ -f "${bases[$seed]}/model.json" ] || bash scripts/train_one.sh "runs/default-base-s$seed" "${bases[$seed]}" --seed "$seed"
  done
  encoder=$(printf 'bundle=%s+' "${bases[@]}")
  pids=()
  for i in 0 1; do
    [ -f "data/teacher-default-$i.npz" ] && continue
    $py -m train.teacher --data data/corpus --splits data/corpus/splits-mb300 --encoder "${encoder%+}" \
      --shard "$i/2" --out "data/teacher-default-$i.npz" &
    pids+=($!)
  done
  for pid in "${pids[@]}"; do wait "$pid"; done  # `wait` alone would not fail the stage with a shard
  echo "the teacher took $(( $(date +%s) - start )) s"
fi
if [ "$stage" -le 2 ] && [ "$last" -ge 2 ]; then
  bash scripts/train_one.sh "$run" "$out" --seed 0 --teacher "$teacher" --distill-weight 1.0 "$@"
fi
if [ "$stage" -le 3 ] && [ "$last" -ge 3 ]; then
  mkdir -p "$run/eval" "$out/eval"
  for c in clean noisy short; do
    $py -m train.evaluate --model "$run" --trials "data/corpus/trials_$c.txt" --audio-root data/corpus \
      --json "$run/eval/$c.json" > /dev/null
    $py -m train.evaluate --model "$out" --trials "data/corpus/trials_$c.txt" --audio-root data/corpus \
      --json "$out/eval/$c.json" --plots "$out/eval/plots-$c" > /dev/null
  done
  $py -m train.report --run "$run" --bundle "$out"
  MODEL="$out" bash scripts/eval_dev.sh
fi
