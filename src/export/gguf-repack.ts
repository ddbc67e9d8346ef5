/**
 * Lossless repacking of edgeq integer weights into GGUF blocks when the grids are the same:
 *   symmetric 4-bit, group 32:  W = s·(code − 8)    ≡ Q4_0  w = d·(q − 8),  q = code, d = s
 *   symmetric 8-bit, group 32:  W = s·(code − 128)  ≡ Q8_0  w = d·q,        q = code − 128, d = s
 * The fp16 scale bits and the integers are copied; dequantizing the block gives exactly edgeq's W.
 */
import { EdgeqError } from '../core/errors.js';
import { f32ToF16Bits, f16BitsToF32 } from '../core/dtype.js';
import type { QuantizedWeight } from '../qtypes/types.js';

function checkRepackable(q: QuantizedWeight, bits: number, name: string): void {
  if (q.grid.bits !== bits || !q.grid.sym || q.groupSize !== 32 || q.gIdx !== null || q.k % 32 !== 0)
    throw new EdgeqError('E_REPACK_GRID', `'${name}' (${q.qtype}${q.gIdx ? ', act-order' : ''}) is not on the ${bits}-bit symmetric g32 grid`);
  const zero = 1 << (bits - 1);
  const bad = q.zeros.findIndex((z) => z !== zero);
  if (bad >= 0) throw new EdgeqError('E_REPACK_GRID', `'${name}' zero point ${q.zeros[bad]} at group ${bad} is not ${zero}`);
}

function scaleBits(q: QuantizedWeight, gi: number, name: string): number {
  const s = q.scales[gi]!;
  const h = f32ToF16Bits(s);
  if (f16BitsToF32(h) !== s) throw new EdgeqError('E_REPACK_SCALE', `'${name}' scale ${s} (group ${gi}) is not fp16-representable`);
  return h;
}

/**
 * GGUF blocks of 32 weights, one fp16 scale first: GGUF row r is edgeq row rowSrc[r] (identity when null);
 * `quants` writes one block's codes after the scale.
 */
function repackBlocks(q: QuantizedWeight, bits: 4 | 8, name: string, rowSrc: Int32Array | null, blockBytes: number, quants: (out: Uint8Array, o: number, base: number) => void): Uint8Array {
  checkRepackable(q, bits, name);
  const { n, k, numGroups } = q;
  const out = new Uint8Array(n * numGroups * blockBytes);
  let o = 0;
  for (let r = 0; r < n; r++) {
    const sr = rowSrc ? rowSrc[r]! : r;
    for (let g = 0; g < numGroups; g++) {
      const h = scaleBits(q, sr * numGroups + g, name);
      out[o] = h & 0xff;
      out[o + 1] = h >>> 8;
      quants(out, o + 2, sr * k + g * 32);
      o += blockBytes;
    }
  }
  return out;
}

/** Q4_0 blocks of q: 16 bytes of nibbles, weight j low and j + 16 high. */
export function repackQ4_0(q: QuantizedWeight, name: string, rowSrc: Int32Array | null = null): Uint8Array {
  return repackBlocks(q, 4, name, rowSrc, 18, (out, o, base) => {
    for (let j = 0; j < 16; j++) out[o + j] = q.codes[base + j]! | (q.codes[base + 16 + j]! << 4);
  });
}

/** Q8_0 blocks of q: 32 signed bytes (code − 128). */
export function repackQ8_0(q: QuantizedWeight, name: string, rowSrc: Int32Array | null = null): Uint8Array {
  return repackBlocks(q, 8, name, rowSrc, 34, (out, o, base) => {
    for (let j = 0; j < 32; j++) out[o + j] = (q.codes[base + j]! - 128) & 0xff;
  });
}
