#!/usr/bin/env bash
# Sets up everything, then serves the web app on the offline default preset (SmolLM2 + Gemma-3 + Qwen2.5-Coder):
# open http://127.0.0.1:7860. Extra arguments go to app.py, e.g. --port 8080, --host 0.0.0.0, --preload.
# The terminal chat is still there: .venv/bin/python -m ensemble chat --preset offline-default --solo
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python app.py "$@"
