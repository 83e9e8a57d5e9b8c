#!/usr/bin/env bash
# The engine week of N people, alternating an earlier revision and this checkout, side by side in one run:
# this machine's speed drifts, so a change is judged against the old code measured in the same minutes.
#   benchmarks/engine_ab.sh REV [PEOPLE] [ROUNDS]     e.g. benchmarks/engine_ab.sh 86cfdea 100000 2
set -euo pipefail
rev=$1; people=${2:-20000}; rounds=${3:-2}
top=$(git rev-parse --show-toplevel); python=${PYTHON:-$top/.venv/bin/python}
old=$(mktemp -d); git -C "$top" worktree add --detach "$old" "$rev" >/dev/null
trap 'git -C "$top" worktree remove --force "$old"' EXIT
for round in $(seq "$rounds"); do
  for side in old new; do
    dir=$([ $side = old ] && echo "$old" || echo "$top")
    out=$(mktemp)
    (cd "$dir" && "$python" benchmarks/engine_week.py --people "$people" --channels 60 --json "$out" >/dev/null 2>&1)
    "$python" -c "import json,sys; d=json.load(open(sys.argv[1])); print(sys.argv[2], sys.argv[3], *(f'{k}={d[k]}' for k in ('engine_seconds', 'cpu_seconds', 'attempts', 'peak_memory_mb')))" "$out" "$side" "$round"
    rm -f "$out"
  done
done
