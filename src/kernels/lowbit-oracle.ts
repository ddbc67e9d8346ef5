/**
 * The scalar TypeScript oracle of the low-bit kernels: the same arithmetic as the WASM kernels
 * (assembly/lowbit-lut.ts, assembly/lowbit-q8.ts), written as plain loops over the unpacked codes, so it
 * is the bit-level reference of the activation side (int8 tables / int8 activations are computed with the
 * same float32 operations in the same order, via Math.fround) and of the integer accumulation. Only the
 * per-block float epilogue differs (float64 here, float32 in WASM).
 *
 * LUT (T-MAC) identity, per block of columns with weight scale s, zero point z, b-bit codes:
 *   Σ_c x_c·(code_c − z) = ½·Σ_planes 2^p Σ_j S_j[idx_pj] + ½·(2^b − 1 − 2z)·Σ_c x_c
 * where j runs over groups of 4 activations, idx_pj is the 4-bit index made of bit p of the 4 codes, and
 * S_j[idx] = Σ_q (bit_q(idx) ? +x_q : −x_q) is the table of the 16 signed sums (S[15−i] = −S[i], so only
 * 8 are computed). Tables are quantized with one scale per block: Q = round(S·63/max Σ|x_q|) (LUT_TABLE_MAX).
 *
 * int8-dot: x quantized to int8 per block (scale max|x|/127), then Σ_c xq_c·code_c − z·Σ_c xq_c in int32,
 * times s·xScale. The prefill GEMM (assembly/lowbit-prefill.ts) does this arithmetic on either packed
 * layout: prefillMatmulRef.
 */
import { f16BitsToF32, f32ToF16Bits } from '../core/dtype.js';
import type { QuantizedWeight } from '../qtypes/types.js';
import { roundHalfEven } from '../qtypes/int-grid.js';
import { blockLength, gatherActivations, type LowbitPlan } from './lowbit-plan.js';

const f = Math.fround;

/**
 * LUT table entries are quantized to ±LUT_TABLE_MAX (7 bits, not 8): the kernel stores them biased by 64 so that
 * two 4-column groups' lookups add in one byte without carry (assembly/lowbit-lut.ts TAB_MAX, TAB_BIAS).
 */
export const LUT_TABLE_MAX = 63;

/** A weight scale as the kernels see it: rounded to fp16 (exact for registry weights). */
export function kernelScale(s: number): number {
  return f16BitsToF32(f32ToF16Bits(s));
}

export interface LutActivations {
  /** (kPad/4) × 16 int8 table entries, index = 4-bit pattern (bit q = sign of x_q, 1 = +). */
  tables: Int8Array;
  /** Per block: ½ · table scale (float32). */
  halfScale: Float32Array;
  /** Per block: ½ · Σ x (float64). */
  halfSum: Float64Array;
}

/** The int8 tables of one token xs (kPad, already gathered/padded). */
export function lutTablesRef(plan: LowbitPlan, xs: Float32Array, off = 0): LutActivations {
  const { kPad, numBlocks, blockLen } = plan;
  const tables = new Int8Array((kPad / 4) * 16);
  const halfScale = new Float32Array(numBlocks);
  const halfSum = new Float64Array(numBlocks);
  for (let b = 0; b < numBlocks; b++) {
    const c0 = b * blockLen;
    const L = blockLength(plan, b);
    let maxAbs = 0;
    let sum = 0;
    for (let c = c0; c < c0 + L; c += 4) {
      const a = f(f(f(Math.abs(xs[off + c]!) + Math.abs(xs[off + c + 1]!)) + Math.abs(xs[off + c + 2]!)) + Math.abs(xs[off + c + 3]!));
      if (a > maxAbs) maxAbs = a;
      sum += xs[off + c]! + xs[off + c + 1]! + xs[off + c + 2]! + xs[off + c + 3]!;
    }
    const inv = maxAbs > 0 ? f(LUT_TABLE_MAX / maxAbs) : 0;
    halfScale[b] = f(f(maxAbs / LUT_TABLE_MAX) * 0.5);
    halfSum[b] = 0.5 * sum;
    for (let c = c0; c < c0 + L; c += 4) {
      const x0 = xs[off + c]!, x1 = xs[off + c + 1]!, x2 = xs[off + c + 2]!, x3 = xs[off + c + 3]!;
      for (let idx = 0; idx < 16; idx++) {
        const s = f(f(f((idx & 1 ? x0 : -x0) + (idx & 2 ? x1 : -x1)) + (idx & 4 ? x2 : -x2)) + (idx & 8 ? x3 : -x3));
        const qv = roundHalfEven(f(s * inv));
        tables[(c / 4) * 16 + idx] = Math.max(-LUT_TABLE_MAX, Math.min(LUT_TABLE_MAX, qv));
      }
    }
  }
  return { tables, halfScale, halfSum };
}

export interface Q8Activations {
  xq: Int16Array;
  /** Per block: activation scale (float32). */
  scale: Float32Array;
  /** Per block: Σ xq. */
  sumq: Int32Array;
}

/** One token xs (kPad) quantized to int8 per block. */
export function q8ActsRef(plan: LowbitPlan, xs: Float32Array, off = 0): Q8Activations {
  const { kPad, numBlocks, blockLen } = plan;
  const xq = new Int16Array(kPad);
  const scale = new Float32Array(numBlocks);
  const sumq = new Int32Array(numBlocks);
  for (let b = 0; b < numBlocks; b++) {
    const c0 = b * blockLen;
    const L = blockLength(plan, b);
    let maxAbs = 0;
    for (let c = c0; c < c0 + L; c++) maxAbs = Math.max(maxAbs, Math.abs(xs[off + c]!));
    const inv = maxAbs > 0 ? f(127 / maxAbs) : 0;
    scale[b] = f(maxAbs / 127);
    let s = 0;
    for (let c = c0; c < c0 + L; c++) {
      const v = Math.max(-127, Math.min(127, roundHalfEven(f(xs[off + c]! * inv))));
      xq[c] = v;
      s += v;
    }
    sumq[b] = s;
  }
  return { xq, scale, sumq };
}

/**
 * Y (m, n) = X (m, k) · Ŵᵀ computed the way `plan.kernel` computes it. If `mag` (m·n) is given it receives
 * Σ over blocks of the absolute values of the epilogue's terms (the scale of float rounding in a kernel).
 */
export function lowbitMatmulRef(
  q: QuantizedWeight,
  plan: LowbitPlan,
  x: Float32Array,
  m: number,
  out: Float32Array,
  mag?: Float64Array,
): Float32Array {
  return matmulRef(q, plan, plan.kernel === 'lut', x, m, out, mag);
}

/**
 * Y (m, n) = X (m, k) · Ŵᵀ computed the way the prefill GEMM computes it, whatever plan.kernel (the packed
 * layout) is: int8 activations per block, exact int32 sums Σ xq·code, epilogue s·xScale·(Σ − z·Σxq).
 * `mag` as in lowbitMatmulRef.
 */
export function prefillMatmulRef(
  q: QuantizedWeight,
  plan: LowbitPlan,
  x: Float32Array,
  m: number,
  out: Float32Array,
  mag?: Float64Array,
): Float32Array {
  return matmulRef(q, plan, false, x, m, out, mag);
}

function matmulRef(
  q: QuantizedWeight,
  plan: LowbitPlan,
  lut: boolean,
  x: Float32Array,
  m: number,
  out: Float32Array,
  mag?: Float64Array,
): Float32Array {
  const { n, k, kPad, numBlocks, blockLen, blockGroup, perm, bits } = plan;
  const G = q.numGroups;
  const xs = new Float32Array(m * kPad);
  gatherActivations(plan, x, m, xs);
  // codes through the permutation, zero-padded to kPad
  const codeRow = new Uint8Array(kPad);
  const accRows = new Float64Array(m * n);
  const magRows = new Float64Array(m * n);
  const acts = Array.from({ length: m }, (_, i) => (lut ? lutTablesRef(plan, xs, i * kPad) : q8ActsRef(plan, xs, i * kPad)));
  for (let r = 0; r < n; r++) {
    for (let p = 0; p < k; p++) codeRow[p] = q.codes[r * k + (perm ? perm[p]! : p)]!;
    for (let b = 0; b < numBlocks; b++) {
      const gi = r * G + blockGroup[b]!;
      const s = kernelScale(q.scales[gi]!);
      const z = q.zeros[gi]!;
      const c0 = b * blockLen;
      const L = blockLength(plan, b);
      for (let i = 0; i < m; i++) {
        let term: number;
        let size: number;
        if (lut) {
          const { tables, halfScale, halfSum } = acts[i] as LutActivations;
          let A = 0; // exact integer: Σ_p 2^p Σ_j Q_j[idx_pj]
          for (let pl = 0; pl < bits; pl++) {
            for (let c = c0; c < c0 + L; c += 4) {
              const idx =
                ((codeRow[c]! >> pl) & 1) |
                (((codeRow[c + 1]! >> pl) & 1) << 1) |
                (((codeRow[c + 2]! >> pl) & 1) << 2) |
                (((codeRow[c + 3]! >> pl) & 1) << 3);
              A += tables[(c / 4) * 16 + idx]! * 2 ** pl;
            }
          }
          const zt = 2 ** bits - 1 - 2 * z;
          term = s * (halfScale[b]! * A + zt * halfSum[b]!);
          size = s * (Math.abs(halfScale[b]! * A) + Math.abs(zt * halfSum[b]!));
        } else {
          const { xq, scale, sumq } = acts[i] as Q8Activations;
          let d = 0;
          for (let c = c0; c < c0 + L; c++) d += xq[c]! * codeRow[c]!;
          term = s * scale[b]! * (d - z * sumq[b]!);
          size = s * scale[b]! * (Math.abs(d) + Math.abs(z * sumq[b]!));
        }
        accRows[i * n + r]! += term;
        magRows[i * n + r]! += size;
      }
    }
  }
  for (let j = 0; j < m * n; j++) out[j] = accRows[j]!;
  if (mag) mag.set(magRows.subarray(0, m * n));
  return out;
}
