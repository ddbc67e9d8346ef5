/**
 * edgeq's packed code layout (what registry `bytes()` counts): each row of k codes is a little-endian
 * bit stream of `bits` bits per code — code j of a row occupies stream bits [j·bits, (j+1)·bits), bit i of
 * the stream is bit (i mod 8) of byte floor(i/8) — and every row is padded with zero bits to a whole
 * byte, so a row takes ceil(k·bits/8) bytes. (4-bit: element 2i in the low nibble, 2i+1 in the high one,
 * like ONNX MatMulNBits; 3-bit codes straddle bytes.)
 */

/** Bytes of one packed row of k codes at `bits` bits each. */
export function packedRowBytes(k: number, bits: number): number {
  return Math.ceil((k * bits) / 8);
}

/** codes (n, k) in [0, 2^bits) -> packed (n, packedRowBytes(k, bits)). */
export function packCodes(codes: Uint8Array, n: number, k: number, bits: number): Uint8Array {
  const rb = packedRowBytes(k, bits);
  const out = new Uint8Array(n * rb);
  const mask = (1 << bits) - 1;
  for (let r = 0; r < n; r++) {
    let bit = 0;
    for (let j = 0; j < k; j++, bit += bits) {
      const v = (codes[r * k + j]! & mask) << (bit & 7); // ≤ 8 + 7 bits: spills into at most one more byte
      const b = r * rb + (bit >>> 3);
      out[b]! |= v & 0xff;
      if (v > 0xff) out[b + 1]! |= v >>> 8;
    }
  }
  return out;
}

/** Inverse of packCodes. */
export function unpackCodes(packed: Uint8Array, n: number, k: number, bits: number): Uint8Array {
  const rb = packedRowBytes(k, bits);
  const out = new Uint8Array(n * k);
  const mask = (1 << bits) - 1;
  for (let r = 0; r < n; r++) {
    let bit = 0;
    for (let j = 0; j < k; j++, bit += bits) {
      const b = r * rb + (bit >>> 3);
      const lo = packed[b]!;
      const hi = (bit & 7) + bits > 8 ? packed[b + 1]! : 0;
      out[r * k + j] = ((lo | (hi << 8)) >>> (bit & 7)) & mask;
    }
  }
  return out;
}
