#!/usr/bin/env bash
# The development set (default data/dev): people and channels no model trains on. Installs what it
# needs (RHVoice voices, klettres-data, sox; .venv-train for pyroomacoustics), then runs
# `python -m train.devset build`. Options: --out DIR --small --seed S --workers N
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
bash "$here/setup_apt.sh"
bash "$here/setup_venvs.sh" train
cd "$repo"
PYTHONPATH=$repo exec .venv-train/bin/python -m train.devset build "$@"
