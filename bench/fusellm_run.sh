#!/usr/bin/env bash
# The acceptance run of docs/bench-fusellm.md: `bench/fusellm.py run` in chunks of about 8 minutes under
# the shared heavy-job lock; a chunk that runs out of time exits 75 and the next one resumes.
#   bench/fusellm_run.sh [TRAIN_BLOCKS] [WORK]      (default 24 runs/fusellm)
set -u
cd "$(dirname "$0")/.."
P=${PYTHON:-/work/main/.venv/bin/python}
BLOCKS=${1:-24}
WORK=${2:-runs/fusellm}
export OMP_NUM_THREADS=2
while true; do
  echo "== $(date -u +%T) chunk"
  flock /tmp/ensemble-heavy.lock nice -n 5 timeout 900 "$P" bench/fusellm.py run --train-blocks "$BLOCKS" \
    --work "$WORK" --minutes 8
  rc=$?
  [ $rc -eq 75 ] || break
done
echo "== $(date -u +%T) exit $rc"
