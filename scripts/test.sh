#!/usr/bin/env bash
# Sets up everything, then runs the whole test suite: lint, the fast tests on tiny fixture models (including the
# real-browser tests, which drive Debian's chromium), and the slow smoke tests on the three real offline models.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
if [ ! -x /usr/bin/chromium ] && command -v apt-get >/dev/null; then
    SUDO=""
    if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
    echo "test.sh: installing the Debian chromium package for the browser tests"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
fi
# llama.cpp's server for the served-member tests (tests/test_remote_llamacpp.py): built once from the pinned
# llama-cpp-python sdist and cached under the model cache (a few minutes the first time).
PYTHON=.venv/bin/python bash scripts/llama-server.sh --build
.venv/bin/ruff check .
# The suite passes in file order, reversed and shuffled (tests/conftest.py --order); CI runs one fixed shuffle.
# Another order: bash scripts/test.sh --order reverse   (or --order file, or --order random --order-seed N)
.venv/bin/python -m pytest -q --order random --order-seed "${TEST_ORDER_SEED:-13}" "$@"
