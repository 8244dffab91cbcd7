#!/usr/bin/env bash
# The acceptance run of docs/bench-fusellm.md, in resumable chunks of at most ~9 minutes under the shared
# heavy-job lock (a stage that runs out of time exits 75 and is started again). Usage: bench/fusellm_run.sh
set -u
cd "$(dirname "$0")/.."
P=${PYTHON:-/work/main/.venv/bin/python}
export OMP_NUM_THREADS=2
A="--work runs/fusellm --train-blocks 32 --held-out-blocks 24 --block-chars 512 --shard-size 8"
heavy() { echo "== $(date -u +%T) $*"; flock /tmp/ensemble-heavy.lock nice -n 5 timeout 900 bash -c "$*"; }
stage() {  # a resumable stage: again while it exits 75
  while true; do
    heavy "$P -m ensemble.fusellm $* $A --minutes 8"
    rc=$?
    [ $rc -eq 75 ] || break
  done
  [ $rc -eq 0 ] || { echo "stage $* failed: $rc"; exit $rc; }
}
stage prepare
heavy "$P -m ensemble.fusellm map $A && $P -m ensemble.fusellm fuse $A --rule mince" || exit 1
for seed in 0 1; do
  stage train --rule mince --seed "$seed"
  stage train --lam 1 --seed "$seed"
done
MODELS="offline:smollm2-135m-instruct"
for seed in 0 1; do MODELS+=" runs/fusellm/runs/control-s$seed/model runs/fusellm/runs/fused-mince-s$seed/model"; done
heavy "$P -m ensemble.fusellm eval $A --models $MODELS" || exit 1
heavy "$P bench/fusellm.py qa --n 300 --models $MODELS && $P bench/fusellm.py map-speed" || exit 1
echo "== $(date -u +%T) done"
