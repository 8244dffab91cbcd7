#!/usr/bin/env bash
# Sets up everything, then runs the whole test suite: lint, the fast tests on tiny fixture models, and
# the slow smoke tests on the three real offline models.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/ruff check .
.venv/bin/python -m pytest -q "$@"
