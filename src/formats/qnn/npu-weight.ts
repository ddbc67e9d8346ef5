/**
 * What the QNN/HTP export stores for one quantized edgeq weight, and its size — one function shared by
 * the exporter (export-qnn.ts) and the ladder (which prices each NPU rung on exactly these weights):
 *
 *   8-bit weights   PER_CHANNEL, bw 8, symmetric: a per-channel sym int8 weight is stored as is (its
 *                   integers and scales); other 8-bit grids are re-rounded per channel
 *   4-bit and less  LPBQ (lpbq.ts): 4-bit integers in blocks of 32/64/128 with a 4-bit multiplier per block
 *                   and one fp16 scale per channel; PER_CHANNEL 4-bit when no LPBQ block size divides K
 *
 * Bytes on the device: ⌈n·k·bw/8⌉ integers + ⌈n·blocks·4/8⌉ block multipliers (LPBQ) + 2·n channel
 * scales (fp16).
 */
import { dequantize } from '../../qtypes/registry.js';
import { fp16Ceil, FP16_MIN_POSITIVE, roundHalfEven } from '../../qtypes/int-grid.js';
import type { QuantizedWeight } from '../../qtypes/types.js';
import { dequantizeLpbq, lpbqAsQuantized, lpbqBlockSizeFor, LPBQ_COMPRESSED_BW, toLpbq, type LpbqFit, type LpbqWeight } from './lpbq.js';

export interface NpuWeight {
  encType: 'LPBQ' | 'PER_CHANNEL';
  bw: number;
  /** LPBQ: the fit; PER_CHANNEL 8-bit: null. */
  lpbq: LpbqWeight | null;
  fit: Omit<LpbqFit, 'lpbq'> | null;
  /** PER_CHANNEL: the scale per output channel (sym, zero offset). */
  channelScale: Float32Array;
  /** The weights the device computes with, as an edgeq QuantizedWeight (sym, group = block). */
  stored: QuantizedWeight;
  bytes: number;
}

/** Device bytes of an NPU weight encoding (see the header). */
export function npuWeightBytes(n: number, k: number, bw: number, blocks: number): number {
  return Math.ceil((n * k * bw) / 8) + (blocks > 1 ? Math.ceil((n * blocks * LPBQ_COMPRESSED_BW) / 8) : 0) + 2 * n;
}

function perChannel8(q: QuantizedWeight): NpuWeight {
  const { n, k } = q;
  if (q.grid.sym && q.numGroups === 1 && q.gIdx === null) {
    return { encType: 'PER_CHANNEL', bw: 8, lpbq: null, fit: null, channelScale: Float32Array.from(q.scales), stored: q, bytes: npuWeightBytes(n, k, 8, 1) };
  }
  const w = dequantize(q);
  const scales = new Float32Array(n);
  const codes = new Uint8Array(n * k);
  for (let r = 0; r < n; r++) {
    let amax = 0;
    for (let c = 0; c < k; c++) amax = Math.max(amax, Math.abs(w[r * k + c]!));
    const s = amax > 0 ? fp16Ceil(Math.max(amax / 127, FP16_MIN_POSITIVE)) : FP16_MIN_POSITIVE;
    scales[r] = s;
    for (let c = 0; c < k; c++) codes[r * k + c] = Math.min(127, Math.max(-128, roundHalfEven(w[r * k + c]! / s))) + 128;
  }
  const stored: QuantizedWeight = { qtype: 'int8_pc_sym', grid: { bits: 8, groupSize: -1, sym: true }, n, k, groupSize: k, numGroups: 1, codes, scales, zeros: new Uint8Array(n).fill(128), gIdx: null };
  return { encType: 'PER_CHANNEL', bw: 8, lpbq: null, fit: null, channelScale: scales, stored, bytes: npuWeightBytes(n, k, 8, 1) };
}

/** The NPU encoding of an edgeq weight; `preferred` LPBQ block size when its own group size is not an LPBQ one. */
export function toNpuWeight(q: QuantizedWeight, name = 'weight', preferred = 64): NpuWeight {
  if (q.grid.bits === 8) return perChannel8(q);
  const block = lpbqBlockSizeFor(q, preferred) ?? q.k;
  const { lpbq, ...fit } = toLpbq(q, block, name);
  const stored = lpbqAsQuantized(lpbq);
  const perChannel = lpbq.blocks === 1;
  return {
    encType: perChannel ? 'PER_CHANNEL' : 'LPBQ',
    bw: LPBQ_COMPRESSED_BW,
    lpbq,
    fit,
    channelScale: perChannel ? Float32Array.from(stored.scales) : lpbq.channelScale,
    stored,
    bytes: npuWeightBytes(q.n, q.k, LPBQ_COMPRESSED_BW, lpbq.blocks),
  };
}

/** The float weights the device computes with. */
export function npuWeightValues(w: NpuWeight): Float32Array {
  return w.lpbq ? dequantizeLpbq(w.lpbq) : dequantize(w.stored);
}
