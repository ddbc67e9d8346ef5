/** Seeded quantized test weights (registry RTN), optionally in GPTQ act-order form, plus Gaussian data. */
import { getQType, qtypeId } from '../../src/qtypes/registry.js';
import type { Bits, QuantizedWeight } from '../../src/qtypes/types.js';
import { seededRng } from '../helpers/upstream-unpack.js';

/** mulberry32, uniform [0, 1): the seeded PRNG the format tests share. */
export const prng = seededRng;

/** N(0, sd²) samples (Box–Muller). */
export function gaussian(rand: () => number, len: number, sd = 1): Float32Array {
  const a = new Float32Array(len);
  for (let i = 0; i < len; i++) {
    const u = Math.max(rand(), 1e-12);
    a[i] = sd * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rand());
  }
  return a;
}

export interface WeightSpec {
  bits: Bits;
  groupSize: number; // -1 = per channel
  sym: boolean;
  actOrder: boolean;
  n: number;
  k: number;
  seed: number;
}

/**
 * RTN-quantized N(0, 0.05²) weight. With actOrder, the columns are quantized in a random order (groups of
 * consecutive columns in that order) and the result is expressed with a gIdx over the original columns —
 * the shape GPTQ act-order produces.
 */
export function makeQuantWeight(spec: WeightSpec): QuantizedWeight {
  const { bits, groupSize, sym, actOrder, n, k, seed } = spec;
  const rand = prng(seed);
  const qt = getQType(qtypeId({ bits, groupSize, sym }));
  const w = gaussian(rand, n * k, 0.05);
  if (!actOrder) return qt.quantizeRef(w, n, k);
  const order = Array.from({ length: k }, (_, i) => i);
  for (let i = k - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  const wp = new Float32Array(n * k); // column i of wp = column order[i] of w
  for (let r = 0; r < n; r++) for (let i = 0; i < k; i++) wp[r * k + i] = w[r * k + order[i]!]!;
  const qp = qt.quantizeRef(wp, n, k);
  const codes = new Uint8Array(n * k);
  const gIdx = new Int32Array(k);
  for (let i = 0; i < k; i++) {
    const c = order[i]!;
    gIdx[c] = Math.floor(i / qp.groupSize);
    for (let r = 0; r < n; r++) codes[r * k + c] = qp.codes[r * k + i]!;
  }
  return { ...qp, codes, gIdx };
}
