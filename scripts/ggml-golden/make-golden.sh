#!/bin/sh
# Regenerate test/fixtures/gguf/ from llama.cpp's own codecs (libggml-base.so shipped by node-llama-cpp).
#   sh scripts/ggml-golden/make-golden.sh
set -eu
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
LIB="$ROOT/node_modules/@node-llama-cpp/linux-x64/bins/linux-x64"
OUT="$ROOT/test/fixtures/gguf"
BIN="$(mktemp -d)/golden"
[ -f "$LIB/libggml-base.so" ] || { echo "no $LIB/libggml-base.so: npm install node-llama-cpp first" >&2; exit 3; }
g++ -O2 -std=c++17 -o "$BIN" "$ROOT/scripts/ggml-golden/golden.cpp" -L"$LIB" -Wl,-rpath,"$LIB" -lggml-base
mkdir -p "$OUT"
"$BIN" "$OUT"
rm -f "$BIN"
