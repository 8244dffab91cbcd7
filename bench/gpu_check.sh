#!/usr/bin/env bash
# Every GPU-only check in one go (bench/gpu_check.py): run it whenever a GPU machine is lent, e.g. through the
# device tool: `bash bench/gpu_check.sh` in the repository root. Appends to bench/results/gpu-check.jsonl.
# Runs under the device image's python3 and packages (no installs there); needs torch with CUDA,
# transformers, and bitsandbytes for the 4-bit check. Not yet run on a GPU: no task so far was lent one.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 timeout 540 "$PY" bench/gpu_check.py
