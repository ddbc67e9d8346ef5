/**
 * Input-side scalings S (k, k) for activation-aware low-rank factorization: factor W·S instead of W, then
 * fold S⁻¹ back into the right factor (W ≈ U·(Vᵀ·S⁻¹)). Three kinds:
 *
 *   plain    S = I
 *   asvd     S = diag(s),  s_j = (mean |x_j|)^α        ASVD (Yuan et al. 2023), α = 0.5 by default;
 *            channels with mean |x| = 0 get the smallest positive s (their columns stay representable)
 *   svdllm   S = chol(G + λ·I), lower, S·Sᵀ = G + λ·I   SVD-LLM (Wang et al. 2024), G = XᵀX (any positive
 *            multiple, e.g. the GPTQ Hessian 2XᵀX/N: the factorization is invariant to the scale)
 *
 * For svdllm, ‖X·(W − Ŵ)ᵀ‖_F² = ‖(W − Ŵ)·S‖_F² when λ = 0, so truncating the SVD of W·S drops exactly
 * the discarded σᵢ² from the output error (truncation-aware whitening). λ is `damp` × the mean diagonal
 * of G (default 0); when G is not numerically positive definite (pivot ≤ 1e-12 × its diagonal — dead
 * channels, fewer calibration rows than k) λ is raised from 1e-8 by ×10 until the Cholesky succeeds,
 * and the λ used is reported. (The SVD-LLM reference adds (−λ_min + 1e-6)·I instead.)
 *
 * Products are plain float64 loops: W·S costs n·k²/2 multiply-adds, the fold r·k²/2.
 */
import { EdgeqError } from '../core/errors.js';
import { tsLinalg64 } from '../quantizers/linalg64.js';

export type WhiteningKind = 'plain' | 'asvd' | 'svdllm';

export interface WhiteningStats {
  /** svdllm: G = XᵀX (k, k) row-major, symmetric positive semi-definite, any positive scale. */
  xtx?: Float64Array;
  /** asvd: mean |x| per input channel (k,). */
  meanAbs?: ArrayLike<number>;
}

export interface WhiteningOptions {
  /** asvd exponent α (default 0.5). */
  alpha?: number;
  /** svdllm: λ relative to the mean diagonal of XᵀX (default 0; raised automatically if needed). */
  damp?: number;
}

export interface Whitening {
  readonly kind: WhiteningKind;
  readonly k: number;
  /** svdllm: the relative λ actually used (0 for the other kinds). */
  readonly damp: number;
  /** M = W·S for W (rows, k) row-major; float64 result. */
  scaleRight(w: ArrayLike<number>, rows: number): Float64Array;
  /** X = Y·S⁻¹ for Y (rows, k) row-major, in place. */
  unscaleRight(y: Float64Array, rows: number): Float64Array;
}

const PIVOT_TOL = 1e-12;

function checkK(k: number, what: string, len: number, want: number): void {
  if (len < want) throw new EdgeqError('E_LOWRANK_STATS', `${what} has ${len} values, expected ${want} for k = ${k}`, 'pass the statistics of this linear\'s input');
}

export function createWhitening(kind: WhiteningKind, k: number, stats: WhiteningStats = {}, opts: WhiteningOptions = {}): Whitening {
  if (!Number.isInteger(k) || k < 1) throw new EdgeqError('E_LOWRANK_SHAPE', `k must be a positive integer, got ${k}`);
  if (kind === 'plain') return identityWhitening(k);
  if (kind === 'asvd') {
    if (!stats.meanAbs) throw new EdgeqError('E_LOWRANK_STATS', 'ASVD needs the mean |x| per input channel', 'collect it with MeanAbsAccumulator');
    return diagonalWhitening(k, stats.meanAbs, opts.alpha ?? 0.5);
  }
  if (kind === 'svdllm') {
    if (!stats.xtx) throw new EdgeqError('E_LOWRANK_STATS', 'SVD-LLM needs XᵀX of the layer input', 'collect it with HessianAccumulator');
    return choleskyWhitening(k, stats.xtx, opts.damp ?? 0);
  }
  throw new EdgeqError('E_LOWRANK_METHOD', `unknown whitening '${String(kind)}'`, 'use plain, asvd or svdllm');
}

function identityWhitening(k: number): Whitening {
  return {
    kind: 'plain',
    k,
    damp: 0,
    scaleRight: (w, rows) => Float64Array.from({ length: rows * k }, (_, i) => w[i]!),
    unscaleRight: (y) => y,
  };
}

function diagonalWhitening(k: number, meanAbs: ArrayLike<number>, alpha: number): Whitening {
  checkK(k, 'meanAbs', meanAbs.length, k);
  if (!(alpha >= 0) || !Number.isFinite(alpha)) throw new EdgeqError('E_LOWRANK_OPTS', `alpha must be a finite number ≥ 0, got ${alpha}`);
  const s = new Float64Array(k);
  let minPos = Infinity;
  for (let j = 0; j < k; j++) {
    const m = meanAbs[j]!;
    if (!(m >= 0) || !Number.isFinite(m)) throw new EdgeqError('E_LOWRANK_STATS', `mean |x| of channel ${j} is ${m}`, 'the calibration activations contain NaN/Inf');
    s[j] = m ** alpha;
    if (s[j]! > 0) minPos = Math.min(minPos, s[j]!);
  }
  if (minPos === Infinity) minPos = 1; // all channels dead: plain SVD
  for (let j = 0; j < k; j++) if (!(s[j]! > 0)) s[j] = minPos;
  return {
    kind: 'asvd',
    k,
    damp: 0,
    scaleRight(w, rows) {
      const out = new Float64Array(rows * k);
      for (let i = 0; i < rows; i++) for (let j = 0; j < k; j++) out[i * k + j] = w[i * k + j]! * s[j]!;
      return out;
    },
    unscaleRight(y, rows) {
      for (let i = 0; i < rows; i++) for (let j = 0; j < k; j++) y[i * k + j] /= s[j]!;
      return y;
    },
  };
}

/** Lower Cholesky factor of G + λ·I with λ escalated as documented; returns L and the relative λ used. */
export function dampedCholesky(g: Float64Array, k: number, damp = 0): { l: Float64Array; damp: number } {
  checkK(k, 'XᵀX', g.length, k * k);
  let meanDiag = 0;
  for (let i = 0; i < k; i++) {
    const d = g[i * k + i]!;
    if (!Number.isFinite(d)) throw new EdgeqError('E_LOWRANK_STATS', `XᵀX has a non-finite diagonal entry at ${i}`, 'the calibration activations contain NaN/Inf');
    meanDiag += d / k;
  }
  if (!(meanDiag > 0)) meanDiag = 1; // all-zero statistics: whitening by λ·I only
  let rel = damp;
  for (let attempt = 0; attempt < 12; attempt++) {
    const l = g.slice(0, k * k);
    const lam = rel * meanDiag;
    for (let i = 0; i < k; i++) l[i * k + i] += lam;
    if (tsLinalg64.cholesky(l, k, PIVOT_TOL)) return { l, damp: rel };
    rel = rel === 0 ? 1e-8 : rel * 10;
  }
  throw new EdgeqError('E_LOWRANK_STATS', 'XᵀX is not positive definite even with damping 1e3 × mean diagonal', 'check the calibration activations');
}

function choleskyWhitening(k: number, g: Float64Array, damp: number): Whitening {
  const { l, damp: used } = dampedCholesky(g, k, damp);
  return {
    kind: 'svdllm',
    k,
    damp: used,
    scaleRight(w, rows) {
      // M[i, j] = Σ_{p ≥ j} W[i, p]·L[p, j]: accumulate row p of L scaled by W[i, p]
      const out = new Float64Array(rows * k);
      for (let i = 0; i < rows; i++) {
        const oi = i * k;
        for (let p = 0; p < k; p++) {
          const f = w[oi + p]!;
          if (f === 0) continue;
          const lp = p * k;
          for (let j = 0; j <= p; j++) out[oi + j] += f * l[lp + j]!;
        }
      }
      return out;
    },
    unscaleRight(y, rows) {
      // x·L = y  ⇔  Lᵀ·xᵀ = yᵀ, back substitution from the last column
      for (let i = 0; i < rows; i++) {
        const oi = i * k;
        for (let j = k - 1; j >= 0; j--) {
          let s = y[oi + j]!;
          for (let p = j + 1; p < k; p++) s -= y[oi + p]! * l[p * k + j]!;
          y[oi + j] = s / l[j * k + j]!;
        }
      }
      return y;
    },
  };
}

/** Running mean |x| per input channel over calibration rows (ASVD's statistic). */
export class MeanAbsAccumulator {
  private readonly sum: Float64Array;
  private rows = 0;
  constructor(readonly k: number) {
    if (!Number.isInteger(k) || k < 1) throw new EdgeqError('E_LOWRANK_SHAPE', `k must be a positive integer, got ${k}`);
    this.sum = new Float64Array(k);
  }
  /** Adds x (t, k) row-major. */
  addBatch(x: ArrayLike<number>, t: number): void {
    checkK(this.k, 'batch', x.length, t * this.k);
    const k = this.k;
    for (let r = 0; r < t; r++) for (let j = 0; j < k; j++) this.sum[j] += Math.abs(x[r * k + j]!);
    this.rows += t;
  }
  get nsamples(): number {
    return this.rows;
  }
  /** (k,) mean |x| (zeros before any batch). */
  mean(): Float64Array {
    return this.sum.map((s) => (this.rows > 0 ? s / this.rows : 0));
  }
}
