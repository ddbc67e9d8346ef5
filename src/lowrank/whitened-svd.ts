/**
 * Activation-aware low-rank factorization of one linear W (n = out, k = in, PyTorch layout):
 *
 *   W ≈ U·V,   U (n, r),  V (r, k)           y = x·Wᵀ ≈ (x·Vᵀ)·Uᵀ
 *
 * with S the input scaling of whitening.ts (plain / asvd / svdllm): M = W·S = Ũ·Σ·Ṽᵀ, truncated to r,
 *   split 'left' (default):  U = Ũ_r·Σ_r,    V = Ṽ_rᵀ·S⁻¹
 *   split 'sqrt':            U = Ũ_r·√Σ_r,   V = √Σ_r·Ṽ_rᵀ·S⁻¹   (balanced magnitudes, for quantized factors;
 *                                                                 what the SVD-LLM and ASVD references store)
 * The SVD of M is the exact dense one (dense-svd.ts) or the randomized range finder on a MatmulBackend
 * (randomized-svd.ts, for large layers).
 *
 * Output error of an approximation Ŵ on calibration inputs X, with G = XᵀX:
 *   ‖X·Wᵀ − X·Ŵᵀ‖_F² = tr((W − Ŵ)·G·(W − Ŵ)ᵀ)
 * For the discarded components i ≥ r of any scaling (Ũ orthonormal, ṽᵢ = S⁻ᵀ·Ṽ[:, i]):
 *   err(r) = Σ_{i ≥ r} σᵢ² · ṽᵢᵀ·G·ṽᵢ
 * (cross terms vanish because the ũᵢ are orthonormal); for svdllm with λ = 0, ṽᵢᵀ·G·ṽᵢ = 1 and err(r) is
 * the sum of the discarded σᵢ². `sensitivityCurve` returns err(r) for every r from one full SVD, so an
 * allocator can pick per-layer ranks.
 *
 * Rank from a parameter budget: a rank-r factorization stores (n + k)·r values instead of n·k, so
 * keeping a fraction `keepRatio` of the parameters gives r = floor(keepRatio·n·k / (n + k)), at least 1 and
 * at most min(n, k) (`rankForRatio`; SVD-LLM's and ASVD's rule).
 */
import { EdgeqError } from '../core/errors.js';
import type { MatmulBackend } from '../kernels/backend.js';
import { exactTruncatedSvd, randomizedSvd, type RandomizedSvdOptions, type TruncatedSvd } from './randomized-svd.js';
import { createWhitening, type Whitening, type WhiteningKind, type WhiteningOptions, type WhiteningStats } from './whitening.js';

export type FactorSplit = 'left' | 'sqrt';

export interface LowRankFactors {
  method: WhiteningKind;
  n: number;
  k: number;
  r: number;
  /** (n, r) row-major. */
  u: Float32Array;
  /** (r, k) row-major. */
  v: Float32Array;
  /** The r leading singular values of the scaled matrix W·S. */
  sigma: Float64Array;
  split: FactorSplit;
  /** svdllm: the relative damping λ used (see whitening.ts); 0 otherwise. */
  damp: number;
}

export interface FactorizeOptions extends WhiteningOptions {
  method: WhiteningKind;
  rank: number;
  stats?: WhiteningStats;
  split?: FactorSplit;
  /** 'exact' (dense float64 SVD, default) or 'randomized' (needs `backend`). */
  solver?: 'exact' | 'randomized';
  backend?: MatmulBackend;
  randomized?: Omit<RandomizedSvdOptions, 'rank'>;
}

function checkWeight(w: ArrayLike<number>, n: number, k: number): void {
  if (!Number.isInteger(n) || !Number.isInteger(k) || n < 1 || k < 1 || w.length < n * k) {
    throw new EdgeqError('E_LOWRANK_SHAPE', `need a weight of ${n}×${k} values, got ${w.length}`);
  }
}

/** r = floor(keepRatio·n·k / (n + k)), clamped to [1, min(n, k)]. keepRatio in (0, 1]. */
export function rankForRatio(n: number, k: number, keepRatio: number): number {
  if (!(keepRatio > 0 && keepRatio <= 1)) {
    throw new EdgeqError('E_LOWRANK_RATIO', `keep ratio must be in (0, 1], got ${keepRatio}`, 'e.g. 0.8 keeps 80% of the parameters (20% reduction)');
  }
  checkWeight({ length: n * k }, n, k);
  return Math.max(1, Math.min(Math.min(n, k), Math.floor((keepRatio * n * k) / (n + k))));
}

/** The SVD of the scaled weight W·S, from which factors of any rank ≤ its rank are cut. */
export interface WhitenedDecomposition {
  method: WhiteningKind;
  n: number;
  k: number;
  /** M = W·S ≈ U·diag(s)·Vᵀ (all min(n, k) components for the exact solver). */
  svd: TruncatedSvd;
  whitening: Whitening;
}

/**
 * SVD of W·S. `rank` bounds the components computed (the randomized solver needs it; the exact solver
 * computes all min(n, k) when it is omitted, so factorsAtRank can serve every rank from one SVD).
 */
export function decomposeWhitened(w: ArrayLike<number>, n: number, k: number, opts: Omit<FactorizeOptions, 'rank' | 'split'> & { rank?: number }): WhitenedDecomposition {
  checkWeight(w, n, k);
  const rank = opts.rank ?? Math.min(n, k);
  if (!Number.isInteger(rank) || rank < 1) throw new EdgeqError('E_LOWRANK_RANK', `rank must be a positive integer, got ${rank}`);
  const wh = createWhitening(opts.method, k, opts.stats, opts);
  const m = wh.scaleRight(w, n); // (n, k)
  let t: TruncatedSvd;
  if ((opts.solver ?? 'exact') === 'randomized') {
    if (!opts.backend) throw new EdgeqError('E_LOWRANK_OPTS', 'the randomized solver needs a matmul backend', 'pass { backend } or solver: "exact"');
    t = randomizedSvd(opts.backend, Float32Array.from(m), n, k, { ...opts.randomized, rank });
  } else {
    t = exactTruncatedSvd(m, n, k, rank);
  }
  return { method: opts.method, n, k, svd: t, whitening: wh };
}

/** Factors of rank r (clamped to the components computed) from a decomposition. */
export function factorsAtRank(d: WhitenedDecomposition, rank: number, split: FactorSplit = 'left'): LowRankFactors {
  const { n, k, svd: t } = d;
  if (!Number.isInteger(rank) || rank < 1) throw new EdgeqError('E_LOWRANK_RANK', `rank must be a positive integer, got ${rank}`);
  const r = Math.min(rank, t.r);
  const u = new Float32Array(n * r);
  const vt = new Float64Array(r * k); // rows = scaled right vectors, then unscaled
  for (let c = 0; c < r; c++) {
    const sc = t.s[c]!;
    const [fu, fv] = split === 'left' ? [sc, 1] : [Math.sqrt(sc), Math.sqrt(sc)];
    for (let i = 0; i < n; i++) u[i * r + c] = t.u[i * t.r + c]! * fu;
    for (let j = 0; j < k; j++) vt[c * k + j] = t.v[j * t.r + c]! * fv;
  }
  d.whitening.unscaleRight(vt, r);
  return { method: d.method, n, k, r, u, v: Float32Array.from(vt), sigma: t.s.slice(0, r), split, damp: d.whitening.damp };
}

/** W ≈ U·V of rank opts.rank (clamped to min(n, k)). */
export function factorizeLowRank(w: ArrayLike<number>, n: number, k: number, opts: FactorizeOptions): LowRankFactors {
  return factorsAtRank(decomposeWhitened(w, n, k, opts), opts.rank, opts.split);
}

/** U·V (n, k) in float64. */
export function expandFactors(f: Pick<LowRankFactors, 'n' | 'k' | 'r' | 'u' | 'v'>): Float64Array {
  const { n, k, r, u, v } = f;
  const out = new Float64Array(n * k);
  for (let i = 0; i < n; i++) for (let c = 0; c < r; c++) {
    const a = u[i * r + c]!;
    if (a === 0) continue;
    for (let j = 0; j < k; j++) out[i * k + j] += a * v[c * k + j]!;
  }
  return out;
}

/** tr(D·G·Dᵀ) for D (n, k): the output error ‖X·Dᵀ‖_F² when G = XᵀX. */
export function quadraticError(d: ArrayLike<number>, n: number, k: number, g: Float64Array): number {
  if (g.length < k * k) throw new EdgeqError('E_LOWRANK_STATS', `XᵀX has ${g.length} values, expected ${k * k}`);
  let total = 0;
  const gd = new Float64Array(k);
  for (let i = 0; i < n; i++) {
    const o = i * k;
    gd.fill(0);
    for (let p = 0; p < k; p++) {
      const f = d[o + p]!;
      if (f === 0) continue;
      for (let j = 0; j < k; j++) gd[j] += f * g[p * k + j]!;
    }
    for (let j = 0; j < k; j++) total += gd[j]! * d[o + j]!;
  }
  return total;
}

/** ‖X·Wᵀ − X·(U·V)ᵀ‖_F² given G = XᵀX (k, k). */
export function lowRankOutputError(w: ArrayLike<number>, f: Pick<LowRankFactors, 'n' | 'k' | 'r' | 'u' | 'v'>, g: Float64Array): number {
  checkWeight(w, f.n, f.k);
  const d = expandFactors(f);
  for (let i = 0; i < d.length; i++) d[i] = w[i]! - d[i]!;
  return quadraticError(d, f.n, f.k, g);
}

export interface SensitivityCurve {
  method: WhiteningKind;
  /** (p + 1,) err[r] = ‖X·Wᵀ − X·W_rᵀ‖_F² for rank r = 0 … p = min(n, k); err[0] = energy, err[p] ≈ 0. */
  err: Float64Array;
  /** tr(W·G·Wᵀ) = ‖X·Wᵀ‖_F². */
  energy: number;
  /** err / energy. */
  relative: Float64Array;
}

/**
 * Output error of the rank-r factorization of `method` for every r, measured with G = `xtx` (k, k), from
 * one full dense SVD of W·S (O(n·k·min(n, k)) per Jacobi sweep: for layers up to a few thousand wide).
 */
export function sensitivityCurve(
  w: ArrayLike<number>,
  n: number,
  k: number,
  xtx: Float64Array,
  opts: { method: WhiteningKind; stats?: WhiteningStats } & WhiteningOptions,
): SensitivityCurve {
  checkWeight(w, n, k);
  return sensitivityOf(decomposeWhitened(w, n, k, { ...opts, stats: opts.stats ?? { xtx } }), w, xtx);
}

/**
 * The sensitivity curve of an existing decomposition of W (err[r] for r = 0 … its computed rank; for a
 * truncated decomposition err[r] then omits the components that were never computed).
 */
export function sensitivityOf(d: WhitenedDecomposition, w: ArrayLike<number>, xtx: Float64Array): SensitivityCurve {
  const { n, k, svd: t } = d;
  checkWeight(w, n, k);
  if (xtx.length < k * k) throw new EdgeqError('E_LOWRANK_STATS', `XᵀX has ${xtx.length} values, expected ${k * k}`);
  const p = t.r;
  // rows ṽᵢᵀ = Ṽ[:, i]ᵀ·S⁻¹
  const vt = new Float64Array(p * k);
  for (let i = 0; i < p; i++) for (let j = 0; j < k; j++) vt[i * k + j] = t.v[j * p + i]!;
  d.whitening.unscaleRight(vt, p);
  const contrib = new Float64Array(p);
  for (let i = 0; i < p; i++) contrib[i] = t.s[i]! * t.s[i]! * quadraticError(vt.subarray(i * k, (i + 1) * k), 1, k, xtx);
  const err = new Float64Array(p + 1);
  for (let r = p - 1; r >= 0; r--) err[r] = err[r + 1]! + contrib[r]!;
  const energy = quadraticError(w, n, k, xtx);
  const relative = err.map((e) => (energy > 0 ? e / energy : 0));
  return { method: d.method, err, energy, relative };
}
