#!/usr/bin/env bash
# Build the synthetic multi-speaker corpus (default data/corpus): installs the speech engines if
# needed, then runs `python -m train.corpus build`. Options: --out DIR --speakers N --utts N --seed S
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
bash "$here/setup_apt.sh"
py="$repo/.venv-train/bin/python"
if [ ! -x "$py" ]; then
  py=python3
  "$py" -c 'import numpy, scipy, soundfile' 2>/dev/null \
    || { echo "make_corpus: need .venv-train (scripts/setup_venvs.sh) or python3 with numpy, scipy, soundfile" >&2; exit 1; }
fi
cd "$repo"
exec "$py" -m train.corpus build "$@"
