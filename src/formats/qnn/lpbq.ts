/**
 * LPBQ ("low-power block quantization", Qualcomm HTP's block-wise W4): symmetric 4-bit integers in blocks
 * of `blockSize` consecutive input elements, whose block scales are themselves quantized against one float
 * scale per output channel:
 *
 *   W[n, k] = q[n, k] · m[n, b(k)] · S[n]      q ∈ [−8, 7] (compressed_bw 4),  m ∈ [1, 16],  b(k) = floor(k / blockSize)
 *
 * (the encoding's `scale` = S, `per_block_int_scale` = m; q·m fits the 8-bit "decompressed" bitwidth, hence
 * bw 8 with offset −128 in the JSON; AIMET and fastforward compute S = max_b(block scale) / 2^4 and
 * m = clamp(round(block scale / S), 1, 16)).
 *
 * edgeq's grids are not LPBQ grids in general (independent fp16 block scales, asymmetric zero points,
 * act-order), so a weight is re-expressed on the LPBQ grid (`toLpbq`): each block's target scale is the
 * edgeq group scale when the grid is symmetric and the block lies inside one group — then any block whose
 * scale is an integer multiple of S keeps its integers exactly — otherwise the smallest symmetric scale
 * covering the block's dequantized values (max(−min/8, max/7)); S = fp16ceil(max target / 16) (so S·m and
 * q·S·m are exact in float32); m = ceil(target / S) or, when its block's squared error is smaller,
 * floor(target / S) (rounding 'mse', the default; 'up' never shrinks a block's range, so no weight moves
 * by more than half an LPBQ step). The result, and how far it moved, is reported.
 */
import { UnsupportedError } from '../../core/errors.js';
import { dequantize } from '../../qtypes/registry.js';
import { fp16Ceil, roundHalfEven, FP16_MIN_POSITIVE } from '../../qtypes/int-grid.js';
import type { QuantizedWeight } from '../../qtypes/types.js';

export const LPBQ_COMPRESSED_BW = 4;
export const LPBQ_DECOMPRESSED_BW = 8;
export const LPBQ_MAX_INT_SCALE = 2 ** LPBQ_COMPRESSED_BW; // 16
export const LPBQ_BLOCK_SIZES: readonly number[] = [32, 64, 128];

export interface LpbqWeight {
  n: number;
  k: number;
  blockSize: number;
  /** Blocks per output channel (k / blockSize). */
  blocks: number;
  /** [n] per-channel float scale S (fp16-representable). */
  channelScale: Float32Array;
  /** [n, blocks] integer multipliers m ∈ [1, 16]. */
  blockIntScale: Uint8Array;
  /** [n, k] integers q ∈ [−8, 7]. */
  q: Int8Array;
}

export interface LpbqFit {
  lpbq: LpbqWeight;
  /** Fraction of weights whose integer equals edgeq's code − 8 (1 = the edgeq grid was already LPBQ). */
  sameIntegers: number;
  /** ‖W_lpbq − W_edgeq‖ / ‖W_edgeq‖. */
  relError: number;
  /** max |W_lpbq − W_edgeq| / (LPBQ step of that weight's block); ≤ 0.5 by construction. */
  maxStepError: number;
}

/** The LPBQ block size used for a weight: its group size when LPBQ has it, else `preferred`; null when k has no LPBQ block. */
export function lpbqBlockSizeFor(q: Pick<QuantizedWeight, 'k' | 'groupSize' | 'numGroups'>, preferred = 64): number | null {
  const candidates = q.numGroups > 1 && LPBQ_BLOCK_SIZES.includes(q.groupSize) ? [q.groupSize, preferred] : [preferred, ...LPBQ_BLOCK_SIZES];
  return candidates.find((b) => q.k % b === 0) ?? null;
}

function quant4(x: number, e: number): number {
  return Math.min(7, Math.max(-8, roundHalfEven(x / e)));
}

/** Squared error of re-rounding w[off, off + len) on step e. */
function blockSse(w: Float32Array, off: number, len: number, e: number): number {
  let sse = 0;
  for (let i = off; i < off + len; i++) {
    const d = quant4(w[i], e) * e - w[i];
    sse += d * d;
  }
  return sse;
}

/** The weights W = q · m · S (float32, exact). */
export function dequantizeLpbq(l: LpbqWeight): Float32Array {
  const w = new Float32Array(l.n * l.k);
  for (let r = 0; r < l.n; r++) {
    for (let c = 0; c < l.k; c++) {
      const e = Math.fround(l.channelScale[r] * l.blockIntScale[r * l.blocks + Math.floor(c / l.blockSize)]);
      w[r * l.k + c] = l.q[r * l.k + c] * e;
    }
  }
  return w;
}

/**
 * Re-expresses an edgeq weight on the LPBQ grid with `blockSize` (which must divide k). blockSize = k is
 * the per-channel symmetric 4-bit grid (one block per row; its scale is S·m), the fallback for a K no
 * LPBQ block size divides (stories260K's 172).
 */
export function toLpbq(qw: QuantizedWeight, blockSize: number, name = 'weight', rounding: 'mse' | 'up' = 'mse'): LpbqFit {
  const { n, k } = qw;
  if (blockSize !== k && (!LPBQ_BLOCK_SIZES.includes(blockSize) || k % blockSize !== 0))
    throw new UnsupportedError('E_LPBQ_BLOCK', `${name}: LPBQ block size ${blockSize} does not divide K = ${k}`, `use one of ${LPBQ_BLOCK_SIZES.join(', ')} that divides K`);
  const w = dequantize(qw);
  const blocks = k / blockSize;
  // A block keeps edgeq's scale as its target when the grid is symmetric and the block lies inside one group.
  const inheritsScale = qw.grid.sym && qw.gIdx === null && (qw.numGroups === 1 || qw.groupSize % blockSize === 0);
  const channelScale = new Float32Array(n);
  const blockIntScale = new Uint8Array(n * blocks);
  const q = new Int8Array(n * k);
  const target = new Float64Array(blocks);
  let same = 0;
  let num = 0;
  let den = 0;
  let maxStepError = 0;
  for (let r = 0; r < n; r++) {
    let tmax = 0;
    for (let b = 0; b < blocks; b++) {
      let t: number;
      if (inheritsScale) {
        t = Math.abs(qw.scales[r * qw.numGroups + (qw.numGroups === 1 ? 0 : Math.floor((b * blockSize) / qw.groupSize))]);
      } else {
        let lo = 0;
        let hi = 0;
        for (let c = b * blockSize; c < (b + 1) * blockSize; c++) {
          lo = Math.min(lo, w[r * k + c]);
          hi = Math.max(hi, w[r * k + c]);
        }
        t = Math.max(-lo / 8, hi / 7);
      }
      target[b] = t;
      tmax = Math.max(tmax, t);
    }
    const S = tmax > 0 ? fp16Ceil(Math.max(tmax / LPBQ_MAX_INT_SCALE, FP16_MIN_POSITIVE)) : FP16_MIN_POSITIVE;
    channelScale[r] = S;
    for (let b = 0; b < blocks; b++) {
      const lo = b * blockSize;
      const ratio = target[b] / S;
      const up = Math.min(LPBQ_MAX_INT_SCALE, Math.max(1, Math.ceil(ratio - 1e-9)));
      let m = up;
      if (rounding === 'mse') {
        // the rounded-down multiplier can be closer overall (at the cost of clipping the block's extremes)
        const down = Math.max(1, Math.floor(ratio + 1e-9));
        if (down !== up && blockSse(w, r * k + lo, blockSize, Math.fround(S * down)) < blockSse(w, r * k + lo, blockSize, Math.fround(S * up))) m = down;
      }
      blockIntScale[r * blocks + b] = m;
      const e = Math.fround(S * m);
      for (let c = lo; c < lo + blockSize; c++) {
        const i = r * k + c;
        const v = quant4(w[i], e);
        q[i] = v;
        const grp = qw.gIdx ? qw.gIdx[c] : Math.floor(c / qw.groupSize);
        if (qw.grid.sym && v === qw.codes[i] - qw.zeros[r * qw.numGroups + grp]) same++;
        const err = v * e - w[i];
        num += err * err;
        den += w[i] * w[i];
        maxStepError = Math.max(maxStepError, Math.abs(err) / e);
      }
    }
  }
  return {
    lpbq: { n, k, blockSize, blocks, channelScale, blockIntScale, q },
    sameIntegers: same / (n * k),
    relError: den > 0 ? Math.sqrt(num / den) : 0,
    maxStepError,
  };
}

/** The LPBQ weight as an edgeq QuantizedWeight (sym int4, group = block, scale S·m), e.g. to write its float values. */
export function lpbqAsQuantized(l: LpbqWeight): QuantizedWeight {
  const scales = new Float32Array(l.n * l.blocks);
  for (let r = 0; r < l.n; r++) for (let b = 0; b < l.blocks; b++) scales[r * l.blocks + b] = Math.fround(l.channelScale[r] * l.blockIntScale[r * l.blocks + b]);
  const perChannel = l.blocks === 1;
  return {
    qtype: perChannel ? 'int4_pc_sym' : `int4_g${l.blockSize}_sym`,
    grid: { bits: 4, groupSize: perChannel ? -1 : l.blockSize, sym: true },
    n: l.n,
    k: l.k,
    groupSize: l.blockSize,
    numGroups: l.blocks,
    codes: Uint8Array.from(l.q, (v) => v + 8),
    scales,
    zeros: new Uint8Array(l.n * l.blocks).fill(8),
    gIdx: null,
  };
}
