#!/usr/bin/env bash
# Serve one offline default model with llama.cpp's own HTTP server on 127.0.0.1:PORT.
#   bash scripts/llama-server.sh NAME PORT [extra llama-server args]   e.g. smollm2-135m-instruct 8081
#   bash scripts/llama-server.sh --build                                only build (scripts/setup.sh calls this)
#   bash scripts/llama-server.sh --path                                 print the binary's path (builds if missing)
#
# The server is built once, from the llama.cpp source vendored in the pinned llama-cpp-python sdist (no binary
# downloads), and cached under the model cache ($ENSEMBLE_CACHE, else ~/.cache/ensemble-chat). Portable flags only:
# a -DGGML_NATIVE=ON build dies with "Illegal instruction" on machines whose CPU differs from the builder's.
# The GGUF is the one scripts/install-models.sh assembled in <cache>/gguf/ (ensemble/models/offline.py MANIFEST).
set -euo pipefail

PIN="llama-cpp-python==0.3.36"
CMAKE_FLAGS=(-DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=OFF -DLLAMA_CURL=OFF -DBUILD_SHARED_LIBS=OFF
  -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=ON)
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${ENSEMBLE_CACHE:-$HOME/.cache/ensemble-chat}"
# The flags are part of the key: changing them rebuilds instead of reusing a binary built differently.
KEY="$(printf '%s %s' "$PIN" "${CMAKE_FLAGS[*]}" | sha256sum | cut -c1-12)"
HOME_DIR="$CACHE/llama.cpp/${PIN#*==}-$KEY"
BIN="$HOME_DIR/llama-server"
PY="${PYTHON:-}"
if [[ -z "$PY" ]]; then
  if [[ -x "$REPO_ROOT/.venv/bin/python" ]]; then PY="$REPO_ROOT/.venv/bin/python"; else PY=python3; fi
fi

build() {
  if [[ -x "$BIN" ]]; then return 0; fi
  mkdir -p "$CACHE/llama.cpp"
  # One build at a time (test.sh and a test fixture may race); the loser waits, then finds the binary.
  # The lock's descriptor is closed before the server is exec'd, so running servers never hold it.
  exec 9>"$CACHE/llama.cpp/.build.lock"
  flock 9
  if [[ -x "$BIN" ]]; then exec 9>&-; return 0; fi
  local work
  work="$(mktemp -d "$CACHE/llama.cpp/build.XXXXXX")"
  trap 'rm -rf "$work"' EXIT
  echo "llama-server.sh: building llama-server from the $PIN sdist (a few minutes, once)" >&2
  "$PY" -m pip download -q --no-binary llama-cpp-python --no-deps "$PIN" -d "$work/sdist" >&2
  tar -xzf "$work"/sdist/*.tar.gz -C "$work"
  local src
  src="$(echo "$work"/llama_cpp_python-*/vendor/llama.cpp)"
  [[ -f "$src/CMakeLists.txt" ]] || { echo "llama-server.sh: no vendored llama.cpp in the sdist" >&2; return 1; }
  local jobs gen=()
  jobs="$(nproc 2>/dev/null || echo 2)"
  if command -v ninja >/dev/null; then gen=(-G Ninja); fi
  nice -n 10 cmake -S "$src" -B "$work/build" "${gen[@]}" "${CMAKE_FLAGS[@]}" >"$work/cmake.log" 2>&1 ||
    { tail -30 "$work/cmake.log" >&2; return 1; }
  nice -n 10 cmake --build "$work/build" --target llama-server -j "$jobs" >"$work/build.log" 2>&1 ||
    { tail -30 "$work/build.log" >&2; return 1; }
  mkdir -p "$HOME_DIR"
  cp "$work/build/bin/llama-server" "$BIN.tmp"
  mv "$BIN.tmp" "$BIN"
  echo "llama-server.sh: built $BIN" >&2
  rm -rf "$work"
  trap - EXIT
  exec 9>&-
}

case "${1:-}" in
  --build) build; exit 0 ;;
  --path) build; echo "$BIN"; exit 0 ;;
  ""|-h|--help) sed -n '2,5p' "$0"; exit 2 ;;
esac
NAME="$1"
PORT="${2:?usage: llama-server.sh NAME PORT}"
shift 2
GGUF="$(cd "$REPO_ROOT" && "$PY" -c '
import sys
from ensemble.models.offline import MANIFEST
from ensemble.config import cache_root
names = {m.name: m for m in MANIFEST}
m = names.get(sys.argv[1])
if m is None:
    sys.exit(f"llama-server.sh: unknown offline model {sys.argv[1]!r}; one of: {sorted(names)}")
print(cache_root() / "gguf" / m.gguf_name)
' "$NAME")"
[[ -f "$GGUF" ]] || { echo "llama-server.sh: $GGUF missing; run bash scripts/install-models.sh" >&2; exit 1; }
build
# -np 1: one slot, so cache_prompt always reuses the previous request's prefix (one ensemble member per server).
exec "$BIN" -m "$GGUF" --host 127.0.0.1 --port "$PORT" -np 1 -c 4096 -t "${LLAMA_THREADS:-2}" "$@"
