#!/bin/sh
# Builds the llama.cpp harnesses against node-llama-cpp's libllama into .cache/llama-quantize/ (called by
# `npm run bench:quality` and `npm run bench:gguf-ppl`; never at npm install) and prints the path of one:
#   sh scripts/llama-quantize/build.sh [quantize|perplexity]      (default: quantize)
#   quantize   → llama-quantize-peer (quantize.cpp: llama_model_quantize)
#   perplexity → llama-ppl-peer (perplexity.cpp: llama_decode; needs include/llama.h and ggml/include/*.h, taken
#                from the llama.cpp source node-llama-cpp ships as node_modules/node-llama-cpp/llama/gitRelease.bundle)
set -eu
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
LIB="$ROOT/node_modules/@node-llama-cpp/linux-x64/bins/linux-x64"
BUNDLE="$ROOT/node_modules/node-llama-cpp/llama/gitRelease.bundle"
OUT="$ROOT/.cache/llama-quantize"
WHICH="${1:-quantize}"
LLAMA="$(ls "$LIB"/libllama.v*.so 2>/dev/null | head -n 1 || true)"
GGML="$(ls "$LIB"/libggml.v*.so 2>/dev/null | head -n 1 || true)"
[ -n "$LLAMA" ] && [ -f "$LLAMA" ] || { echo "no $LIB/libllama.v*.so: npm install node-llama-cpp first" >&2; exit 3; }
mkdir -p "$OUT"
case "$WHICH" in
  quantize)
    BIN="$OUT/llama-quantize-peer"
    SRC="$ROOT/scripts/llama-quantize/quantize.cpp"
    if [ ! -x "$BIN" ] || [ "$SRC" -nt "$BIN" ]; then
      g++ -O2 -std=c++17 -o "$BIN" "$SRC" "$LLAMA" -Wl,-rpath,"$LIB" >&2
    fi
    ;;
  perplexity)
    BIN="$OUT/llama-ppl-peer"
    SRC="$ROOT/scripts/llama-quantize/perplexity.cpp"
    INC="$OUT/llama-headers"
    if [ ! -f "$INC/include/llama.h" ]; then
      [ -f "$BUNDLE" ] || { echo "no $BUNDLE (the llama.cpp source node-llama-cpp ships)" >&2; exit 3; }
      TMP="$OUT/llama-src.tmp"
      rm -rf "$TMP" "$INC"
      git clone --quiet --no-checkout "$BUNDLE" "$TMP" >&2
      mkdir -p "$INC"
      git -C "$TMP" archive HEAD include ggml/include | tar -x -C "$INC"
      rm -rf "$TMP"
    fi
    if [ ! -x "$BIN" ] || [ "$SRC" -nt "$BIN" ]; then
      g++ -O2 -std=c++17 -DBACKEND_DIR="\"$LIB\"" -I"$INC/include" -I"$INC/ggml/include" -o "$BIN" "$SRC" "$LLAMA" "$GGML" -Wl,-rpath,"$LIB" >&2
    fi
    ;;
  *) echo "build.sh: unknown harness '$WHICH' (quantize or perplexity)" >&2; exit 2 ;;
esac
echo "$BIN"
