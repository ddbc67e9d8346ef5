/**
 * Integer-grid math shared by the registry, RTN and GPTQ (conventions of IST-DASLab GPTQ `quant.py`).
 *
 *   ŵ = scale · (code − zero)        code = clamp(roundHalfEven(w / scale) + zero, 0, maxq),  maxq = 2^bits − 1
 *
 *   asym: xmin = min(0, min w), xmax = max(0, max w), scale = (xmax − xmin)/maxq, zero = roundHalfEven(−xmin/scale)
 *   sym:  amax = max|w|,          scale = 2·amax/maxq,                           zero = (maxq + 1)/2 = 2^(bits−1)
 *   all-zero group: as quant.py, xmin = −1, xmax = +1 (so scale = 2/maxq, every code = zero, ŵ = 0; no NaN).
 *
 * Deliberate deviations from quant.py, both documented and tested:
 *   1. The scale is rounded UP to the next fp16 value (fp16Ceil) BEFORE codes are computed, so the stored
 *      fp16 scale reproduces the codes exactly and the grid never shrinks: every weight of a min/max group
 *      dequantizes within scale/2 of itself (rounding to the nearest fp16 could shrink the range by 2^-11
 *      and clip the extremes by up to maxq·2^-11 scale steps). Scales are clamped to [2^-24, 65504].
 *   2. sym uses amax = max|w| even when the group has no negative weight (quant.py keeps xmin = 0 then,
 *      which halves the usable range of all-positive groups). Identical whenever the group has a w < 0.
 *
 * Rounding rule for codes and zero points: round half to even (torch.round / numpy.round), roundHalfEven.
 */
import { f16BitsToF32, f32ToF16Bits } from '../core/dtype.js';
import { UnsupportedError } from '../core/errors.js';
import type { GridSpec, QuantizedWeight } from './types.js';

/** Largest finite fp16. */
export const FP16_MAX = 65504;
/** Smallest positive fp16 (subnormal 2^-24). */
export const FP16_MIN_POSITIVE = 2 ** -24;

export interface GroupParams {
  scale: number; // fp16-representable, > 0
  zero: number; // integer in [0, maxq]
}

export function maxQ(bits: number): number {
  return 2 ** bits - 1;
}

/** The fixed zero point of symmetric grids: (maxq + 1)/2 = 2^(bits−1). */
export function symZero(bits: number): number {
  return 2 ** (bits - 1);
}

/** Round half to even (banker's rounding), the rule of torch.round. Math.round would round half up. */
export function roundHalfEven(x: number): number {
  const r = Math.round(x); // nearest, ties toward +∞
  return r - x === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** The smallest fp16 value ≥ x, for 0 < x ≤ 65504 (rounding toward +∞). */
export function fp16Ceil(x: number): number {
  let h = f32ToF16Bits(x); // nearest-even of fround(x)
  let v = f16BitsToF32(h);
  while (v < x) v = f16BitsToF32(++h); // at most one step (two when fround rounded down across a tie)
  return v;
}

/** Effective group size of `grid` for rows of k weights (k when per-channel). */
export function groupSizeFor(grid: GridSpec, k: number): number {
  return grid.groupSize === -1 ? k : grid.groupSize;
}

/** Registry group sizes that divide k, largest first (for error hints). */
function dividingGroupSizes(k: number): number[] {
  return [128, 64, 32].filter((g) => k % g === 0);
}

/**
 * Throws a typed UnsupportedError unless rows of k weights split into whole groups of `grid`.
 * `name` (the tensor) is named in the message; the hint says which --group-size would work.
 */
export function checkGroupable(grid: GridSpec, k: number, name?: string): void {
  if (!Number.isInteger(k) || k < 1) {
    throw new UnsupportedError('E_QUANT_SHAPE', `${name ? `tensor '${name}': ` : ''}in-features k must be a positive integer, got ${k}`);
  }
  if (grid.groupSize === -1 || k % grid.groupSize === 0) return;
  const ok = dividingGroupSizes(k);
  const what = name ? `tensor '${name}'` : 'the weight';
  throw new UnsupportedError(
    'E_GROUP_SIZE',
    `${what} has k=${k} input features, not divisible by group size ${grid.groupSize}`,
    ok.length > 0
      ? `use --group-size ${ok[0]} (divides ${k}), or per-channel (--group-size -1), or keep this tensor in fp16`
      : `no group size of 32/64/128 divides ${k}: use per-channel (--group-size -1) or keep this tensor in fp16`,
  );
}

/** `grid` itself when it fits rows of k weights, else its per-channel variant (same bits and symmetry). */
export function fallbackGrid(grid: GridSpec, k: number): GridSpec {
  return grid.groupSize === -1 || k % grid.groupSize === 0 ? grid : { ...grid, groupSize: -1 };
}

/**
 * Group parameters from a (possibly clipped) range [xmin, xmax], quant.py find_params style.
 * The scale is fp16-rounded up before the zero point is derived from it.
 */
export function paramsFromRange(xmin: number, xmax: number, grid: GridSpec, name?: string): GroupParams {
  const mq = maxQ(grid.bits);
  let lo = Math.min(0, xmin);
  let hi = Math.max(0, xmax);
  if (grid.sym) {
    const amax = Math.max(-lo, hi);
    lo = amax === 0 ? -1 : -amax;
    hi = amax === 0 ? 1 : amax;
  } else if (lo === 0 && hi === 0) {
    lo = -1;
    hi = 1;
  }
  const raw = (hi - lo) / mq;
  if (!(raw <= FP16_MAX)) {
    throw new UnsupportedError(
      'E_SCALE_RANGE',
      `${name ? `tensor '${name}': ` : ''}a group's weight range ${lo}..${hi} needs a scale ${raw} beyond fp16 (max ${FP16_MAX})`,
      'keep this tensor in fp16 (its weights are far outside the usual range)',
    );
  }
  const scale = raw <= FP16_MIN_POSITIVE ? FP16_MIN_POSITIVE : fp16Ceil(raw);
  if (grid.sym) return { scale, zero: symZero(grid.bits) };
  const z = roundHalfEven(-lo / scale) + 0; // + 0 turns −0 into 0
  return { scale, zero: z < 0 ? 0 : z > mq ? mq : z };
}

/** code = clamp(roundHalfEven(x/scale) + zero, 0, maxq). */
export function quantCode(x: number, scale: number, zero: number, maxq: number): number {
  const q = roundHalfEven(x / scale) + zero;
  return q < 0 ? 0 : q > maxq ? maxq : q;
}

/** ŵ = scale·(code − zero), computed in f64 and rounded to f32 once (exact: an fp16 times a small integer). */
export function dequantValue(scale: number, code: number, zero: number): number {
  return Math.fround(scale * (code - zero));
}

/** Min/max of src[off .. off+len). */
export function rangeOf(src: ArrayLike<number>, off: number, len: number): [number, number] {
  let lo = Infinity;
  let hi = -Infinity;
  for (let j = off; j < off + len; j++) {
    const v = src[j]!;
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  return [lo, hi];
}

/** Plain min/max parameters of one group src[off .. off+len). */
export function minMaxParams(src: ArrayLike<number>, off: number, len: number, grid: GridSpec, name?: string): GroupParams {
  const [lo, hi] = rangeOf(src, off, len);
  return paramsFromRange(lo, hi, grid, name);
}

/**
 * quant.py's MSE clip search (`mse=True`): shrink the range by p = 1 − i/gridPoints for i < maxShrink·gridPoints
 * and keep the params minimizing Σ|ŵ − w|^norm over the group (p = 1, plain min/max, is the first candidate).
 */
export function mseParams(
  src: ArrayLike<number>,
  off: number,
  len: number,
  grid: GridSpec,
  opts: { norm?: number; gridPoints?: number; maxShrink?: number; name?: string } = {},
): GroupParams {
  const norm = opts.norm ?? 2.4;
  const points = opts.gridPoints ?? 100;
  const steps = Math.floor((opts.maxShrink ?? 0.8) * points);
  const mq = maxQ(grid.bits);
  const [lo, hi] = rangeOf(src, off, len);
  let best = paramsFromRange(lo, hi, grid, opts.name);
  let bestErr = Infinity;
  for (let i = 0; i < steps; i++) {
    const p = 1 - i / points;
    const cand = paramsFromRange(p * lo, p * hi, grid, opts.name);
    let err = 0;
    for (let j = off; j < off + len; j++) {
      const x = src[j]!;
      err += Math.abs(dequantValue(cand.scale, quantCode(x, cand.scale, cand.zero, mq), cand.zero) - x) ** norm;
    }
    if (err < bestErr) {
      bestErr = err;
      best = cand;
    }
  }
  return best;
}

/** An empty QuantizedWeight of shape (n, k) on `grid` (k must already be checked with checkGroupable). */
export function allocQuantized(qtype: string, grid: GridSpec, n: number, k: number): QuantizedWeight {
  const groupSize = groupSizeFor(grid, k);
  const numGroups = Math.ceil(k / groupSize);
  return {
    qtype,
    grid: { ...grid },
    n,
    k,
    groupSize,
    numGroups,
    codes: new Uint8Array(n * k), // (n, k)
    scales: new Float32Array(n * numGroups), // (n, numGroups)
    zeros: new Uint8Array(n * numGroups), // (n, numGroups)
    gIdx: null,
  };
}

/** Plain min/max RTN of W (n, k) into `q` (allocated by allocQuantized). */
export function quantizeMinMaxInto(w: Float32Array, q: QuantizedWeight, name?: string): void {
  const { n, k, groupSize: g, numGroups: G, grid } = q;
  const mq = maxQ(grid.bits);
  for (let r = 0; r < n; r++) {
    for (let gi = 0; gi < G; gi++) {
      const off = r * k + gi * g;
      const { scale, zero } = minMaxParams(w, off, g, grid, name);
      q.scales[r * G + gi] = scale;
      q.zeros[r * G + gi] = zero;
      for (let j = off; j < off + g; j++) q.codes[j] = quantCode(w[j]!, scale, zero, mq);
    }
  }
}

/** Ŵ (n, k) from a QuantizedWeight (honours gIdx). */
export function dequantizeInt(q: QuantizedWeight): Float32Array {
  const { n, k, groupSize: g, numGroups: G, gIdx } = q;
  const out = new Float32Array(n * k); // (n, k)
  for (let r = 0; r < n; r++) {
    for (let c = 0; c < k; c++) {
      const gi = r * G + (gIdx ? gIdx[c]! : Math.floor(c / g));
      out[r * k + c] = dequantValue(q.scales[gi]!, q.codes[r * k + c]!, q.zeros[gi]!);
    }
  }
  return out;
}
