/**
 * Round-to-nearest quantization of a weight W (n = out, k = in), plain or importance-weighted.
 *
 * Plain RTN: per group, min/max params (int-grid.ts), codes by round-half-to-even.
 *
 * Importance-weighted RTN (llama.cpp imatrix style). With a_j = importance of input channel j (mean x²
 * over calibration tokens), each group's (scale, zero) is chosen to minimize
 *
 *     E(scale, zero) = Σ_j a_j · (w_j − ŵ_j)²        over the group's columns j,
 *
 * by (1) a clip search over the ranges p·[min, max] with p = 1 − i/40, i = 0..19 (p = 1 is plain RTN), then
 * (2) weighted least-squares refits of the scale (and, asym, the offset) for the best candidate's codes,
 * each re-quantized and kept only when E drops. Since the plain candidate is evaluated first and only
 * strict improvements replace it, E ≤ E_plain for every group by construction.
 */
import { f16BitsToF32, f32ToF16Bits } from '../core/dtype.js';
import { NonFiniteWeightError, UsageError } from '../core/errors.js';
import {
  allocQuantized,
  checkGroupable,
  FP16_MAX,
  FP16_MIN_POSITIVE,
  maxQ,
  paramsFromRange,
  quantCode,
  dequantValue,
  quantizeMinMaxInto,
  rangeOf,
  roundHalfEven,
  type GroupParams,
} from '../qtypes/int-grid.js';
import { qtypeFor } from '../qtypes/registry.js';
import type { GridSpec, QuantizedWeight } from '../qtypes/types.js';

export interface RtnOptions {
  /** (k,) mean x² per input channel (≥ 0); enables the importance-weighted search. */
  importance?: Float32Array;
  /** Tensor name for error messages. */
  name?: string;
  /** Clip candidates of the search (default 20: p = 1 − i/40, i < 20). */
  clipCandidates?: number;
  /** Least-squares refit rounds after the clip search (default 2). */
  refits?: number;
}

/** Throws NonFiniteWeightError on the first NaN/Inf of w[0 .. len). */
export function assertFinite(w: ArrayLike<number>, len: number, name = 'weight'): void {
  for (let i = 0; i < len; i++) {
    const v = w[i]!;
    if (!Number.isFinite(v)) throw new NonFiniteWeightError(name, i, v);
  }
}

/** Quantizes W (n, k) row-major on `grid`; see the module comment. */
export function quantizeRtn(w: Float32Array, n: number, k: number, grid: GridSpec, opts: RtnOptions = {}): QuantizedWeight {
  const name = opts.name;
  checkGroupable(grid, k, name);
  if (w.length < n * k) throw new UsageError('E_QUANT_SHAPE', `weight${name ? ` '${name}'` : ''} has ${w.length} values, expected n*k = ${n * k}`);
  assertFinite(w, n * k, name);
  const q = allocQuantized(qtypeFor(grid).id, grid, n, k);
  const imp = opts.importance;
  if (!imp) {
    quantizeMinMaxInto(w, q, name);
    return q;
  }
  if (imp.length !== k) throw new UsageError('E_IMPORTANCE_SHAPE', `importance has ${imp.length} values, expected k = ${k}${name ? ` for '${name}'` : ''}`);
  for (let j = 0; j < k; j++) {
    if (!(imp[j]! >= 0) || !Number.isFinite(imp[j]!)) {
      throw new UsageError('E_IMPORTANCE_VALUE', `importance[${j}] = ${imp[j]} is not a finite value ≥ 0${name ? ` for '${name}'` : ''}`);
    }
  }
  const { groupSize: g, numGroups: G } = q;
  const search = { candidates: opts.clipCandidates ?? 20, refits: opts.refits ?? 2, name };
  for (let r = 0; r < n; r++) {
    for (let gi = 0; gi < G; gi++) {
      const off = r * k + gi * g;
      const p = weightedGroupParams(w, off, imp, gi * g, g, grid, search);
      q.scales[r * G + gi] = p.scale;
      q.zeros[r * G + gi] = p.zero;
      const mq = maxQ(grid.bits);
      for (let j = 0; j < g; j++) q.codes[off + j] = quantCode(w[off + j]!, p.scale, p.zero, mq);
    }
  }
  return q;
}

/** Σ a_j (w_j − ŵ_j)² of one group under params p. */
function weightedErr(w: ArrayLike<number>, off: number, a: ArrayLike<number>, aOff: number, len: number, p: GroupParams, mq: number): number {
  let e = 0;
  for (let j = 0; j < len; j++) {
    const x = w[off + j]!;
    const d = x - dequantValue(p.scale, quantCode(x, p.scale, p.zero, mq), p.zero);
    e += a[aOff + j]! * d * d;
  }
  return e;
}

/** Nearest fp16 value, clamped to [2^-24, 65504]; NaN/≤0 -> undefined (refit rejected). */
function fp16Nearest(x: number): number | undefined {
  if (!(x > 0)) return undefined;
  if (x >= FP16_MAX) return FP16_MAX;
  const v = f16BitsToF32(f32ToF16Bits(x));
  return v > 0 ? v : FP16_MIN_POSITIVE;
}

/**
 * Weighted least-squares refit for fixed codes c_j: sym minimizes Σ a (w − s(c − z))² over s;
 * asym minimizes Σ a (w − s·c − m)² over (s, m) and sets z = round(−m/s).
 */
function refit(
  w: ArrayLike<number>,
  off: number,
  a: ArrayLike<number>,
  aOff: number,
  len: number,
  p: GroupParams,
  grid: GridSpec,
  mq: number,
): GroupParams | undefined {
  let sa = 0, sc = 0, sw = 0, scc = 0, scw = 0;
  for (let j = 0; j < len; j++) {
    const x = w[off + j]!;
    const aj = a[aOff + j]!;
    const c = quantCode(x, p.scale, p.zero, mq) - (grid.sym ? p.zero : 0);
    sa += aj;
    sc += aj * c;
    sw += aj * x;
    scc += aj * c * c;
    scw += aj * c * x;
  }
  if (grid.sym) {
    const s = fp16Nearest(scw / scc);
    return s === undefined ? undefined : { scale: s, zero: p.zero };
  }
  const det = sa * scc - sc * sc;
  if (!(det > 0)) return undefined;
  const s = fp16Nearest((sa * scw - sc * sw) / det);
  if (s === undefined) return undefined;
  const m = (sw - ((sa * scw - sc * sw) / det) * sc) / sa;
  const z = roundHalfEven(-m / s) + 0; // + 0 turns −0 into 0
  return { scale: s, zero: z < 0 ? 0 : z > mq ? mq : z };
}

/** The importance-weighted search for one group w[off .. off+len) with a[aOff .. aOff+len). */
function weightedGroupParams(
  w: ArrayLike<number>,
  off: number,
  a: ArrayLike<number>,
  aOff: number,
  len: number,
  grid: GridSpec,
  o: { candidates: number; refits: number; name?: string },
): GroupParams {
  const mq = maxQ(grid.bits);
  const [lo, hi] = rangeOf(w, off, len);
  let best = paramsFromRange(lo, hi, grid, o.name); // plain RTN, candidate 0
  let bestErr = weightedErr(w, off, a, aOff, len, best, mq);
  for (let i = 1; i < o.candidates && bestErr > 0; i++) {
    const pr = 1 - i / 40;
    const cand = paramsFromRange(pr * lo, pr * hi, grid, o.name);
    const e = weightedErr(w, off, a, aOff, len, cand, mq);
    if (e < bestErr) {
      bestErr = e;
      best = cand;
    }
  }
  for (let it = 0; it < o.refits && bestErr > 0; it++) {
    const cand = refit(w, off, a, aOff, len, best, grid, mq);
    if (!cand) break;
    const e = weightedErr(w, off, a, aOff, len, cand, mq);
    if (!(e < bestErr)) break;
    bestErr = e;
    best = cand;
  }
  return best;
}

/** Σ_r Σ_j a_j (W[r,j] − Ŵ[r,j])² for W, Ŵ (n, k) and a (k,) (importance-weighted squared error). */
export function importanceWeightedError(w: Float32Array, wq: Float32Array, a: Float32Array, n: number, k: number): number {
  let e = 0;
  for (let r = 0; r < n; r++) {
    for (let j = 0; j < k; j++) {
      const d = w[r * k + j]! - wq[r * k + j]!;
      e += a[j]! * d * d;
    }
  }
  return e;
}
