#!/bin/sh
# Builds the llama_model_quantize harness against node-llama-cpp's libllama into .cache/llama-quantize/
# (called by `npm run bench:quality`; never at npm install). Prints the binary's path.
#   sh scripts/llama-quantize/build.sh
set -eu
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
LIB="$ROOT/node_modules/@node-llama-cpp/linux-x64/bins/linux-x64"
OUT="$ROOT/.cache/llama-quantize"
BIN="$OUT/llama-quantize-peer"
SRC="$ROOT/scripts/llama-quantize/quantize.cpp"
LLAMA="$(ls "$LIB"/libllama.v*.so 2>/dev/null | head -n 1 || true)"
[ -n "$LLAMA" ] && [ -f "$LLAMA" ] || { echo "no $LIB/libllama.v*.so: npm install node-llama-cpp first" >&2; exit 3; }
mkdir -p "$OUT"
if [ ! -x "$BIN" ] || [ "$SRC" -nt "$BIN" ]; then
  g++ -O2 -std=c++17 -o "$BIN" "$SRC" "$LLAMA" -Wl,-rpath,"$LIB" >&2
fi
echo "$BIN"
