/**
 * Truncated SVD by a randomized range finder (Halko, Martinsson & Tropp 2011, Algorithms 4.4 + 5.1):
 *
 *   Ω (n, l) Gaussian, l = r + p              (seeded mulberry32 + Box–Muller; p = oversampling)
 *   Q = orth(A·Ω)                              (m, l)
 *   q times:  Q = orth(A·orth(Aᵀ·Q))           (power iterations, re-orthonormalized every half step)
 *   B = Qᵀ·A                                   (l, n), small
 *   B = Ũ·Σ·Vᵀ  (dense float64 SVD)   →   A ≈ (Q·Ũ)·Σ·Vᵀ, truncated to rank r
 *
 * The O(m·n·l) products with A run on a MatmulBackend (fp32 GEMM, A uploaded once as A and as Aᵀ); the
 * orthonormalization (modified Gram–Schmidt, two passes, in float64) and the small SVD (dense-svd.ts)
 * stay in float64. Panels are kept transposed (l rows of length m or n) so that each product is one
 * backend call X·Wᵀ and each basis vector is contiguous. `randomizedSvdReference` runs the same algorithm
 * with the same Ω with plain float64 loops instead of the backend (the oracle for the fast path).
 *
 * The error is governed by σ_{l+1}: with q power iterations the expected excess over the optimal rank-r
 * error shrinks like (σ_{l+1}/σ_r)^{2q+1}; when l ≥ min(m, n) the exact dense SVD is used instead.
 */
import { EdgeqError } from '../core/errors.js';
import { mulberry32 } from '../calib/prng.js';
import type { MatmulBackend } from '../kernels/backend.js';
import { denseSvd } from './dense-svd.js';

export interface RandomizedSvdOptions {
  /** Target rank r ≥ 1 (clamped to min(m, n)). */
  rank: number;
  /** Oversampling p (default 10). */
  oversample?: number;
  /** Power iterations q (default 2). */
  powerIters?: number;
  /** PRNG seed of Ω (default 0). */
  seed?: number;
}

/** A ≈ U·diag(s)·Vᵀ of rank r. */
export interface TruncatedSvd {
  m: number;
  n: number;
  r: number;
  /** (m, r) row-major, orthonormal columns. */
  u: Float64Array;
  /** (r,) descending. */
  s: Float64Array;
  /** (n, r) row-major, orthonormal columns. */
  v: Float64Array;
}

/** The two products the range finder needs, on rows of transposed panels. */
interface Products {
  /** X (rows, n) → X·Aᵀ (rows, m) */
  timesAt(x: Float64Array, rows: number): Float64Array;
  /** X (rows, m) → X·A (rows, n) */
  timesA(x: Float64Array, rows: number): Float64Array;
  release(): void;
}

function checkArgs(a: ArrayLike<number>, m: number, n: number, opts: RandomizedSvdOptions): void {
  if (!Number.isInteger(m) || !Number.isInteger(n) || m < 1 || n < 1 || a.length < m * n) {
    throw new EdgeqError('E_LOWRANK_SHAPE', `randomizedSvd: need a ${m}×${n} matrix, got ${a.length} values`);
  }
  const { rank, oversample = 10, powerIters = 2 } = opts;
  if (!Number.isInteger(rank) || rank < 1) throw new EdgeqError('E_LOWRANK_RANK', `rank must be a positive integer, got ${rank}`);
  if (!Number.isInteger(oversample) || oversample < 0) throw new EdgeqError('E_LOWRANK_OPTS', `oversample must be a non-negative integer, got ${oversample}`);
  if (!Number.isInteger(powerIters) || powerIters < 0) throw new EdgeqError('E_LOWRANK_OPTS', `powerIters must be a non-negative integer, got ${powerIters}`);
}

/** Ωᵀ (l, n): standard normal entries from mulberry32(seed) via Box–Muller. */
export function gaussianPanel(l: number, n: number, seed: number): Float64Array {
  const rng = mulberry32(seed);
  const out = new Float64Array(l * n);
  for (let i = 0; i < out.length; i += 2) {
    const u1 = (rng.nextU32() + 0.5) / 2 ** 32; // in (0, 1)
    const u2 = rng.nextU32() / 2 ** 32;
    const rad = Math.sqrt(-2 * Math.log(u1));
    out[i] = rad * Math.cos(2 * Math.PI * u2);
    if (i + 1 < out.length) out[i + 1] = rad * Math.sin(2 * Math.PI * u2);
  }
  return out;
}

/**
 * In place: orthonormalizes the rows of P (l, len) by modified Gram–Schmidt, two passes. A row that is
 * exactly dependent on the previous ones (residual 0) is set to zero; later steps treat it as absent.
 */
export function orthonormalizeRows(p: Float64Array, l: number, len: number): void {
  for (let j = 0; j < l; j++) {
    const rj = j * len;
    for (let pass = 0; pass < 2; pass++) {
      for (let c = 0; c < j; c++) {
        const rc = c * len;
        let d = 0;
        for (let i = 0; i < len; i++) d += p[rc + i]! * p[rj + i]!;
        if (d === 0) continue;
        for (let i = 0; i < len; i++) p[rj + i] -= d * p[rc + i]!;
      }
    }
    let nrm = 0;
    for (let i = 0; i < len; i++) nrm += p[rj + i]! * p[rj + i]!;
    nrm = Math.sqrt(nrm);
    if (!(nrm > 1e-300)) {
      p.fill(0, rj, rj + len);
      continue;
    }
    for (let i = 0; i < len; i++) p[rj + i] /= nrm;
  }
}

/** The range finder on abstract products (shared by the backend path and the float64 reference). */
function rangeFinderSvd(ops: Products, m: number, n: number, opts: RandomizedSvdOptions): TruncatedSvd {
  const r = Math.min(opts.rank, m, n);
  const l = Math.min(r + (opts.oversample ?? 10), m, n);
  const q = opts.powerIters ?? 2;
  let qt = ops.timesAt(gaussianPanel(l, n, opts.seed ?? 0), l); // (l, m) = (A·Ω)ᵀ
  orthonormalizeRows(qt, l, m);
  for (let it = 0; it < q; it++) {
    const zt = ops.timesA(qt, l); // (l, n) = (Aᵀ·Q)ᵀ
    orthonormalizeRows(zt, l, n);
    qt = ops.timesAt(zt, l);
    orthonormalizeRows(qt, l, m);
  }
  const b = ops.timesA(qt, l); // (l, n) = Qᵀ·A
  const d = denseSvd(b, l, n); // p = l
  // U = Q·Ũ[:, :r]  (m, r): U[i, c] = Σ_j Qt[j, i]·Ũ[j, c]
  const u = new Float64Array(m * r);
  for (let j = 0; j < l; j++) {
    for (let c = 0; c < r; c++) {
      const f = d.u[j * d.p + c]!;
      if (f === 0) continue;
      for (let i = 0; i < m; i++) u[i * r + c] += qt[j * m + i]! * f;
    }
  }
  const v = new Float64Array(n * r);
  for (let i = 0; i < n; i++) for (let c = 0; c < r; c++) v[i * r + c] = d.v[i * d.p + c]!;
  return { m, n, r, u, s: d.s.slice(0, r), v };
}

/** The exact rank-r truncation of A's SVD (dense float64; small matrices). */
export function exactTruncatedSvd(a: ArrayLike<number>, m: number, n: number, rank: number): TruncatedSvd {
  const d = denseSvd(a, m, n);
  const r = Math.min(rank, d.p);
  const u = new Float64Array(m * r);
  for (let i = 0; i < m; i++) for (let c = 0; c < r; c++) u[i * r + c] = d.u[i * d.p + c]!;
  const v = new Float64Array(n * r);
  for (let i = 0; i < n; i++) for (let c = 0; c < r; c++) v[i * r + c] = d.v[i * d.p + c]!;
  return { m, n, r, u, s: d.s.slice(0, r), v };
}

/**
 * Rank-r truncated SVD of A (m, n) row-major fp32, the big products on `backend`. Falls back to the exact
 * dense SVD when r + p ≥ min(m, n).
 */
export function randomizedSvd(backend: MatmulBackend, a: Float32Array, m: number, n: number, opts: RandomizedSvdOptions): TruncatedSvd {
  checkArgs(a, m, n, opts);
  if (Math.min(opts.rank, m, n) + (opts.oversample ?? 10) >= Math.min(m, n)) return exactTruncatedSvd(a, m, n, opts.rank);
  const at = new Float32Array(n * m);
  for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) at[j * m + i] = a[i * n + j]!;
  const hA = backend.prepareWeight(a, m, n); // X (rows, n) · Aᵀ
  const hAt = backend.prepareWeight(at, n, m); // X (rows, m) · A
  const run = (x: Float64Array, rows: number, h: typeof hA): Float64Array => Float64Array.from(backend.matmul(Float32Array.from(x), rows, h));
  const ops: Products = {
    timesAt: (x, rows) => run(x, rows, hA),
    timesA: (x, rows) => run(x, rows, hAt),
    release() {
      backend.freeWeight(hA);
      backend.freeWeight(hAt);
    },
  };
  try {
    return rangeFinderSvd(ops, m, n, opts);
  } finally {
    ops.release();
  }
}

/** The same algorithm with the same Ω, every product a plain float64 loop (the oracle of randomizedSvd). */
export function randomizedSvdReference(a: ArrayLike<number>, m: number, n: number, opts: RandomizedSvdOptions): TruncatedSvd {
  checkArgs(a, m, n, opts);
  if (Math.min(opts.rank, m, n) + (opts.oversample ?? 10) >= Math.min(m, n)) return exactTruncatedSvd(a, m, n, opts.rank);
  const ops: Products = {
    timesAt(x, rows) {
      const y = new Float64Array(rows * m);
      for (let t = 0; t < rows; t++) for (let i = 0; i < m; i++) {
        let s = 0;
        for (let j = 0; j < n; j++) s += x[t * n + j]! * a[i * n + j]!;
        y[t * m + i] = s;
      }
      return y;
    },
    timesA(x, rows) {
      const y = new Float64Array(rows * n);
      for (let t = 0; t < rows; t++) for (let i = 0; i < m; i++) {
        const f = x[t * m + i]!;
        for (let j = 0; j < n; j++) y[t * n + j] += f * a[i * n + j]!;
      }
      return y;
    },
    release() {},
  };
  return rangeFinderSvd(ops, m, n, opts);
}
