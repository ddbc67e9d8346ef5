/**
 * Small dense decompositions in Float64Array (row-major), the exact core of the low-rank solvers:
 *
 *   symmetricEigen(A, n)   A = Q·diag(λ)·Qᵀ         cyclic two-sided Jacobi (Rutishauser's rotation)
 *   denseSvd(A, m, n)      A = U·diag(σ)·Vᵀ         one-sided Jacobi (Hestenes), thin: p = min(m, n)
 *
 * Both are O(n³) per sweep with a handful of sweeps (quadratic convergence), meant for matrices up to a
 * few hundred rows/columns: the core of the randomized range finder, and the full SVD of whitened weights
 * of small models. Results are sorted descending (eigenvalues by value, singular values by size); U and V
 * have orthonormal columns even when A is rank-deficient (the columns of zero singular values are
 * completed to an orthonormal set).
 *
 * One-sided Jacobi works on the columns of A (for m ≥ n; otherwise on Aᵀ): rotate pairs of columns until
 * every pair is orthogonal to relative precision, accumulating the rotations in V; then σⱼ = ‖column j‖
 * and uⱼ = column j / σⱼ. It computes small singular values to high relative accuracy (unlike the
 * eigendecomposition of AᵀA, which squares the condition number). Columns are stored as rows of a
 * transposed copy so that every rotation runs over contiguous memory.
 */
import { EdgeqError } from '../core/errors.js';

export interface SymmetricEigen {
  /** (n,) eigenvalues, descending. */
  values: Float64Array;
  /** (n, n) row-major; column j is the unit eigenvector of values[j]. */
  vectors: Float64Array;
}

export interface DenseSvd {
  m: number;
  n: number;
  /** p = min(m, n). */
  p: number;
  /** (m, p) row-major, orthonormal columns. */
  u: Float64Array;
  /** (p,) singular values, descending, ≥ 0. */
  s: Float64Array;
  /** (n, p) row-major, orthonormal columns (A = U·diag(s)·Vᵀ). */
  v: Float64Array;
}

const EPS = 2.220446049250313e-16;
const MAX_SWEEPS = 80;

function checkShape(what: string, a: ArrayLike<number>, m: number, n: number): void {
  if (!Number.isInteger(m) || !Number.isInteger(n) || m < 1 || n < 1) {
    throw new EdgeqError('E_LOWRANK_SHAPE', `${what}: dimensions must be positive integers, got ${m}×${n}`);
  }
  if (a.length < m * n) throw new EdgeqError('E_LOWRANK_SHAPE', `${what}: matrix has ${a.length} values, expected ${m}×${n} = ${m * n}`);
  for (let i = 0; i < m * n; i++) {
    if (!Number.isFinite(a[i]!)) {
      throw new EdgeqError('E_LOWRANK_NONFINITE', `${what}: non-finite value ${a[i]} at flat index ${i}`, 'check the weights and calibration statistics for NaN/Inf');
    }
  }
}

function noConvergence(what: string): EdgeqError {
  return new EdgeqError('E_LOWRANK_NOCONVERGE', `${what}: Jacobi sweeps did not converge in ${MAX_SWEEPS} sweeps`, 'this indicates extreme values in the matrix; report it with the matrix');
}

/** Eigendecomposition of the symmetric n×n matrix A (only read; symmetry is assumed, the mean of A and Aᵀ is used). */
export function symmetricEigen(a: ArrayLike<number>, n: number): SymmetricEigen {
  checkShape('symmetricEigen', a, n, n);
  const A = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) A[i * n + j] = 0.5 * (a[i * n + j]! + a[j * n + i]!);
  // Qt: rows are the eigenvectors (Qt = Qᵀ), so each rotation touches two contiguous rows.
  const Qt = new Float64Array(n * n);
  for (let i = 0; i < n; i++) Qt[i * n + i] = 1;
  let converged = n === 1;
  for (let sweep = 0; sweep < MAX_SWEEPS && !converged; sweep++) {
    let rotated = false;
    for (let p = 0; p < n - 1; p++) {
      for (let q = p + 1; q < n; q++) {
        const apq = A[p * n + q]!;
        if (apq === 0) continue;
        const app = A[p * n + p]!;
        const aqq = A[q * n + q]!;
        // negligible against both diagonal entries: set to zero (classic Jacobi threshold)
        if (Math.abs(apq) <= EPS * 0.5 * Math.sqrt(Math.abs(app * aqq))) {
          A[p * n + q] = 0;
          A[q * n + p] = 0;
          continue;
        }
        rotated = true;
        const theta = (aqq - app) / (2 * apq);
        const t = (theta >= 0 ? 1 : -1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1);
        const s = t * c;
        // A ← Jᵀ·A·J with J the rotation in the (p, q) plane: columns then rows.
        for (let k = 0; k < n; k++) {
          const akp = A[k * n + p]!;
          const akq = A[k * n + q]!;
          A[k * n + p] = c * akp - s * akq;
          A[k * n + q] = s * akp + c * akq;
        }
        for (let k = 0; k < n; k++) {
          const apk = A[p * n + k]!;
          const aqk = A[q * n + k]!;
          A[p * n + k] = c * apk - s * aqk;
          A[q * n + k] = s * apk + c * aqk;
        }
        A[p * n + q] = 0;
        A[q * n + p] = 0;
        for (let k = 0; k < n; k++) {
          const vp = Qt[p * n + k]!;
          const vq = Qt[q * n + k]!;
          Qt[p * n + k] = c * vp - s * vq;
          Qt[q * n + k] = s * vp + c * vq;
        }
      }
    }
    converged = !rotated;
  }
  if (!converged) throw noConvergence('symmetricEigen');
  const order = Array.from({ length: n }, (_, i) => i).sort((x, y) => A[y * n + y]! - A[x * n + x]!);
  const values = new Float64Array(n);
  const vectors = new Float64Array(n * n);
  order.forEach((src, j) => {
    values[j] = A[src * n + src]!;
    for (let k = 0; k < n; k++) vectors[k * n + j] = Qt[src * n + k]!;
  });
  return { values, vectors };
}

/**
 * Thin SVD of the m×n matrix A (row-major, only read). Rank-deficient input is fine: zero singular values
 * get orthonormal completion columns in U.
 *
 * Fast path (default): Householder QR first, A = Q·R, then one-sided Jacobi on Rᵀ (Drmač–Veselić
 * preconditioning: Rᵀ's columns are much closer to orthogonal, so far fewer sweeps, each on an n×n
 * instead of an m×n matrix): Rᵀ = Ũ·Σ·Ṽᵀ gives A = (Q·Ṽ)·Σ·Ũᵀ. `{ precondition: false }` runs the plain
 * one-sided Jacobi on A's columns (the reference the fast path is tested against).
 */
export function denseSvd(a: ArrayLike<number>, m: number, n: number, opts: { precondition?: boolean } = {}): DenseSvd {
  checkShape('denseSvd', a, m, n);
  const pre = opts.precondition ?? true;
  if (m < n) {
    // A = U Σ Vᵀ  ⇔  Aᵀ = V Σ Uᵀ, and the transposed-columns form of the tall Aᵀ is A itself
    const g = Float64Array.from({ length: m * n }, (_, i) => a[i]!);
    const r = pre ? preconditionedSvd(g, n, m) : tallSvd(g, n, m);
    return { m, n, p: r.p, u: r.v, s: r.s, v: r.u };
  }
  // G = Aᵀ (n, m): row j = column j of A
  const g = new Float64Array(n * m);
  for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) g[j * m + i] = a[i * n + j]!;
  return pre ? preconditionedSvd(g, m, n) : tallSvd(g, m, n);
}

/**
 * SVD of the tall A (m, n), m ≥ n, given as G = Aᵀ (n rows of length m, consumed): Householder QR of A
 * on G's rows, one-sided Jacobi on Rᵀ, U = Q·Ṽ applied reflector by reflector.
 */
function preconditionedSvd(g: Float64Array, m: number, n: number): DenseSvd {
  if (n === 1) return tallSvd(g, m, n);
  const vs = new Float64Array(n * m); // reflector j: vs[j*m + j .. j*m + m), H_j = I − β_j·v·vᵀ
  const beta = new Float64Array(n);
  for (let j = 0; j < n; j++) {
    const gj = j * m;
    let nrm = 0;
    for (let i = j; i < m; i++) nrm += g[gj + i]! * g[gj + i]!;
    nrm = Math.sqrt(nrm);
    if (nrm === 0) continue; // zero column below the diagonal: H_j = I
    const x0 = g[gj + j]!;
    const alpha = x0 >= 0 ? -nrm : nrm;
    const vj = j * m;
    vs[vj + j] = x0 - alpha;
    for (let i = j + 1; i < m; i++) vs[vj + i] = g[gj + i]!;
    let vv = 0;
    for (let i = j; i < m; i++) vv += vs[vj + i]! * vs[vj + i]!;
    if (vv === 0) continue;
    const b = 2 / vv;
    beta[j] = b;
    g[gj + j] = alpha;
    g.fill(0, gj + j + 1, gj + m);
    for (let c = j + 1; c < n; c++) {
      const gc = c * m;
      let d = 0;
      for (let i = j; i < m; i++) d += vs[vj + i]! * g[gc + i]!;
      if (d === 0) continue;
      d *= b;
      for (let i = j; i < m; i++) g[gc + i] -= d * vs[vj + i]!;
    }
  }
  // Rᵀ's columns are R's rows: the transposed-columns layout of Rᵀ is R itself, R[i][c] = G[c][i] (i ≤ c)
  const r = new Float64Array(n * n);
  for (let c = 0; c < n; c++) for (let i = 0; i <= c; i++) r[i * n + c] = g[c * m + i]!;
  const inner = tallSvd(r, n, n); // Rᵀ = Ũ·Σ·Ṽᵀ  ⇒  A = Q·R = (Q·Ṽ)·Σ·Ũᵀ
  // U = Q·[Ṽ; 0] (m, n) = H_0·H_1···H_{n−1}·[Ṽ; 0]
  const u = new Float64Array(m * n);
  u.set(inner.v.subarray(0, n * n));
  const tmp = new Float64Array(n);
  for (let j = n - 1; j >= 0; j--) {
    const b = beta[j]!;
    if (b === 0) continue;
    const vj = j * m;
    tmp.fill(0);
    for (let i = j; i < m; i++) {
      const f = vs[vj + i]!;
      if (f === 0) continue;
      for (let c = 0; c < n; c++) tmp[c] += f * u[i * n + c]!;
    }
    for (let i = j; i < m; i++) {
      const f = b * vs[vj + i]!;
      if (f === 0) continue;
      for (let c = 0; c < n; c++) u[i * n + c] -= f * tmp[c]!;
    }
  }
  return { m, n, p: n, u, s: inner.s, v: inner.u };
}

/** One-sided Jacobi on G = Aᵀ (n rows of length m, m ≥ n), consumed. */
function tallSvd(g: Float64Array, m: number, n: number): DenseSvd {
  const vt = new Float64Array(n * n); // row j = column j of V
  for (let i = 0; i < n; i++) vt[i * n + i] = 1;
  const tol = EPS * Math.sqrt(m); // relative orthogonality target
  const sq = new Float64Array(n); // squared column norms, recomputed every sweep, updated per rotation
  let converged = n === 1;
  for (let sweep = 0; sweep < MAX_SWEEPS && !converged; sweep++) {
    let rotated = false;
    for (let j = 0; j < n; j++) {
      let t = 0;
      for (let i = 0; i < m; i++) t += g[j * m + i]! * g[j * m + i]!;
      sq[j] = t;
    }
    for (let p = 0; p < n - 1; p++) {
      const gp = p * m;
      for (let q = p + 1; q < n; q++) {
        const alpha = sq[p]!;
        const beta = sq[q]!;
        if (alpha === 0 || beta === 0) continue;
        const gq = q * m;
        let gamma = 0;
        for (let i = 0; i < m; i++) gamma += g[gp + i]! * g[gq + i]!;
        if (gamma === 0 || Math.abs(gamma) <= tol * Math.sqrt(alpha * beta)) continue;
        rotated = true;
        const zeta = (beta - alpha) / (2 * gamma);
        const t = (zeta >= 0 ? 1 : -1) / (Math.abs(zeta) + Math.sqrt(1 + zeta * zeta));
        const c = 1 / Math.sqrt(1 + t * t);
        const s = c * t;
        for (let i = 0; i < m; i++) {
          const x = g[gp + i]!;
          const y = g[gq + i]!;
          g[gp + i] = c * x - s * y;
          g[gq + i] = s * x + c * y;
        }
        // exact in exact arithmetic for this t (root of t²γ + t(β − α) − γ = 0)
        sq[p] = Math.max(0, alpha - t * gamma);
        sq[q] = beta + t * gamma;
        const vp = p * n;
        const vq = q * n;
        for (let i = 0; i < n; i++) {
          const x = vt[vp + i]!;
          const y = vt[vq + i]!;
          vt[vp + i] = c * x - s * y;
          vt[vq + i] = s * x + c * y;
        }
      }
    }
    converged = !rotated;
  }
  if (!converged) throw noConvergence('denseSvd');
  const norms = new Float64Array(n);
  for (let j = 0; j < n; j++) {
    let s = 0;
    for (let i = 0; i < m; i++) s += g[j * m + i]! * g[j * m + i]!;
    norms[j] = Math.sqrt(s);
  }
  const order = Array.from({ length: n }, (_, i) => i).sort((x, y) => norms[y]! - norms[x]!);
  const sMax = n > 0 ? norms[order[0]!]! : 0;
  const zeroBelow = sMax * EPS * 8; // below this a column carries no reliable direction
  const p = n;
  const u = new Float64Array(m * p);
  const s = new Float64Array(p);
  const v = new Float64Array(n * p);
  const missing: number[] = [];
  order.forEach((src, j) => {
    const sj = norms[src]!;
    for (let i = 0; i < n; i++) v[i * p + j] = vt[src * n + i]!;
    if (sj <= zeroBelow || sj === 0) {
      s[j] = sj <= zeroBelow ? 0 : sj;
      missing.push(j);
      return;
    }
    s[j] = sj;
    for (let i = 0; i < m; i++) u[i * p + j] = g[src * m + i]! / sj;
  });
  if (missing.length > 0) completeColumns(u, m, p, missing);
  return { m, n, p, u, s, v };
}

/**
 * Fills the listed columns of U (m, p) with unit vectors orthogonal to all other filled columns
 * (Gram–Schmidt, twice, of the standard basis vector with the largest residual).
 */
function completeColumns(u: Float64Array, m: number, p: number, missing: number[]): void {
  const filled = new Set<number>();
  for (let j = 0; j < p; j++) if (!missing.includes(j)) filled.add(j);
  const w = new Float64Array(m);
  for (const j of missing) {
    let best = -1;
    let bestNorm = -1;
    // residual norm² of e_i after projection: 1 − Σ_c u[i, c]²
    for (let i = 0; i < m; i++) {
      let r = 1;
      for (const c of filled) r -= u[i * p + c]! * u[i * p + c]!;
      if (r > bestNorm) {
        bestNorm = r;
        best = i;
      }
    }
    w.fill(0);
    w[best] = 1;
    for (let pass = 0; pass < 2; pass++) {
      for (const c of filled) {
        let d = 0;
        for (let i = 0; i < m; i++) d += u[i * p + c]! * w[i]!;
        for (let i = 0; i < m; i++) w[i] -= d * u[i * p + c]!;
      }
    }
    let nrm = 0;
    for (let i = 0; i < m; i++) nrm += w[i]! * w[i]!;
    nrm = Math.sqrt(nrm);
    for (let i = 0; i < m; i++) u[i * p + j] = w[i]! / nrm;
    filled.add(j);
  }
}

/** U·diag(s)·Vᵀ (m, n) of a decomposition, keeping the first r components (default all). */
export function reconstructSvd(d: DenseSvd, r = d.p): Float64Array {
  const { m, n, p, u, s, v } = d;
  const out = new Float64Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let c = 0; c < r; c++) {
      const f = u[i * p + c]! * s[c]!;
      if (f === 0) continue;
      for (let j = 0; j < n; j++) out[i * n + j] += f * v[j * p + c]!;
    }
  }
  return out;
}
