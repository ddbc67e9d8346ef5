/**
 * Bit packing of quantization codes for edgeq's own format.
 *
 * Each row of `cols` codes is one little-endian bit stream: code i occupies stream bits
 * [i·bits, (i+1)·bits), and stream bit j is bit (j mod 8) of byte floor(j / 8) — "LSB-first". Rows are
 * padded with zero bits to a whole number of bytes, so row r starts at byte r·packedRowBytes(cols, bits)
 * and rows can be read independently. 8-bit codes are stored as is; 4-bit puts code 2i in the low
 * nibble of byte i; 2-bit puts code 4i in bits 0-1; 3-bit codes straddle byte boundaries (8 codes per
 * 3 bytes).
 */
import { EdgeqError } from '../core/errors.js';
import type { Bits } from '../qtypes/types.js';

export const PACKABLE_BITS: readonly Bits[] = [2, 3, 4, 8];

export function isPackableBits(b: unknown): b is Bits {
  return b === 2 || b === 3 || b === 4 || b === 8;
}

/** Bytes one packed row of `cols` codes takes: ceil(cols·bits / 8). */
export function packedRowBytes(cols: number, bits: Bits): number {
  checkBits(bits);
  return Math.ceil((cols * bits) / 8);
}

/**
 * Pack `rows × cols` codes (row-major, each in [0, 2^bits)) into rows × packedRowBytes(cols, bits)
 * bytes. Throws on a code out of range (it would silently corrupt its neighbours).
 */
export function packCodes(codes: Uint8Array, rows: number, cols: number, bits: Bits): Uint8Array {
  checkDims(codes.length, rows, cols, 'codes');
  const rowBytes = packedRowBytes(cols, bits);
  const out = new Uint8Array(rows * rowBytes);
  const limit = 1 << bits;
  for (let r = 0; r < rows; r++) {
    const src = r * cols;
    let o = r * rowBytes;
    if (bits === 8) {
      out.set(codes.subarray(src, src + cols), o);
      continue;
    }
    let acc = 0; // pending bits, LSB = next stream bit
    let nacc = 0;
    for (let c = 0; c < cols; c++) {
      const v = codes[src + c]!;
      if (v >= limit) {
        throw new EdgeqError(
          'E_CODE_RANGE',
          `code ${v} at row ${r}, column ${c} does not fit in ${bits} bits`,
          'quantization codes must lie in [0, 2^bits); this is a quantizer bug',
        );
      }
      acc |= v << nacc;
      nacc += bits;
      while (nacc >= 8) {
        out[o++] = acc & 0xff;
        acc >>>= 8;
        nacc -= 8;
      }
    }
    if (nacc > 0) out[o] = acc & 0xff; // partial last byte, high bits zero
  }
  return out;
}

/** Inverse of packCodes: rows × cols codes from rows × packedRowBytes(cols, bits) bytes. */
export function unpackCodes(packed: Uint8Array, rows: number, cols: number, bits: Bits): Uint8Array {
  const rowBytes = packedRowBytes(cols, bits);
  if (!Number.isSafeInteger(rows) || rows < 0 || packed.length !== rows * rowBytes) {
    throw new EdgeqError(
      'E_PACKED_SIZE',
      `packed codes are ${packed.length} bytes; ${rows} rows of ${cols} ${bits}-bit codes need ${rows * rowBytes}`,
    );
  }
  const out = new Uint8Array(rows * cols);
  const mask = (1 << bits) - 1;
  for (let r = 0; r < rows; r++) {
    let i = r * rowBytes;
    const dst = r * cols;
    if (bits === 8) {
      out.set(packed.subarray(i, i + cols), dst);
      continue;
    }
    let acc = 0;
    let nacc = 0;
    for (let c = 0; c < cols; c++) {
      if (nacc < bits) {
        acc |= packed[i++]! << nacc;
        nacc += 8;
      }
      out[dst + c] = acc & mask;
      acc >>>= bits;
      nacc -= bits;
    }
  }
  return out;
}

function checkBits(bits: number): void {
  if (!isPackableBits(bits)) {
    throw new EdgeqError('E_BITS', `cannot pack ${bits}-bit codes (supported: ${PACKABLE_BITS.join(', ')})`);
  }
}

function checkDims(length: number, rows: number, cols: number, what: string): void {
  if (!Number.isSafeInteger(rows) || !Number.isSafeInteger(cols) || rows < 0 || cols < 0 || length !== rows * cols) {
    throw new EdgeqError('E_PACKED_SIZE', `${what} has ${length} elements, expected ${rows} × ${cols}`);
  }
}
