#!/usr/bin/env bash
# Sets up everything, then runs the main job on the offline default preset: an interactive terminal chat
# that streams the fused answer of SmolLM2 + Gemma-3 + Qwen2.5-Coder, and each member's own answer.
# Extra arguments go to `python -m ensemble chat`, e.g. --method gac or --prompt "..." for one answer.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python -m ensemble chat --preset offline-default "$@"
