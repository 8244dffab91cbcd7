#!/usr/bin/env bash
# The acceptance run of docs/bench-fusellm.md for one corpus seed: `bench/fusellm.py run` in chunks of about
# 8 minutes at low priority on one thread (the 2 cores are shared); a chunk that runs out of time exits 75
# and the next one resumes. Then regenerate the doc: `python bench/fusellm.py report`.
#   bench/fusellm_run.sh [CORPUS_SEED] [TRAIN_BLOCKS]      (default 0 1000)
set -u
cd "$(dirname "$0")/.."
P=${PYTHON:-/work/main/.venv/bin/python}
SEED=${1:-0}
BLOCKS=${2:-1000}
export OMP_NUM_THREADS=1
while true; do
  echo "== $(date -u +%T) chunk"
  nice -n 15 timeout 900 "$P" bench/fusellm.py run --corpus-seed "$SEED" --train-blocks "$BLOCKS" --minutes 8
  rc=$?
  [ $rc -eq 75 ] || break
done
echo "== $(date -u +%T) exit $rc"
