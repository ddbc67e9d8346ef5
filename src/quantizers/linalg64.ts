/**
 * Float64 dense linear algebra for GPTQ: blocked Cholesky, blocked lower-triangular inverse and the
 * upper Cholesky factor of an inverse. All matrices are row-major n×n Float64Arrays.
 *
 * The blocked drivers here are shared by two implementations that differ only in the O(n³) kernel
 * (`Gemm64`): the plain TypeScript one in this file (the oracle, `createTsLinalg64`) and a WebAssembly
 * f64x2 SIMD one (linalg64-wasm.ts) whose buffers live in wasm memory. Block size nb = 64 by default.
 *
 * GPTQ's Hinv = cholesky(cholesky_inverse(cholesky(H)), upper=True) — the upper factor U with UᵀU = H⁻¹ —
 * is computed here with one factorization and one triangular inverse instead of three O(n³) steps: with
 * J the reversal permutation, let J·H·J = L̃·L̃ᵀ (lower Cholesky of the reversed matrix); then
 * H = V·Vᵀ with V = J·L̃·J upper, H⁻¹ = V⁻ᵀ·V⁻¹, so U = V⁻¹ = J·L̃⁻¹·J (upper, positive diagonal — by
 * uniqueness exactly the matrix torch computes). Reversing both indices of a row-major n×n matrix is
 * reversing its flat array.
 */

/**
 * The O(n³) primitive, on one buffer with element offsets and leading dimensions:
 *   C (m×n, ldc) += alpha · A (m×k, lda) · op(B)       op(B) = B (k×n, ldb), or Bᵀ when transB (B is n×k, ldb)
 * tri = 0: dense. tri = 1: only C[i, j] with j ≤ i + triOff are needed (an implementation may also write
 * other entries of row i up to column n). tri = 2: A[i, p] = 0 for p > i + triOff (an implementation may
 * read those zeros, so they must be present in the buffer).
 */
export type Gemm64 = (
  buf: Float64Array,
  c: number,
  ldc: number,
  a: number,
  lda: number,
  b: number,
  ldb: number,
  transB: boolean,
  m: number,
  n: number,
  k: number,
  alpha: number,
  tri: 0 | 1 | 2,
  triOff: number,
) => void;

export interface Linalg64 {
  readonly name: string;
  /**
   * In place: A -> L with A = L·Lᵀ (lower triangle; the strict upper triangle is zeroed). Returns false
   * (A is then garbage) when a pivot is not > pivotTol · (its original diagonal entry), i.e. A is not
   * (numerically) positive definite. pivotTol defaults to 0.
   */
  cholesky(a: Float64Array, n: number, pivotTol?: number): boolean;
  /** In place: lower-triangular L -> L⁻¹ (the strict upper triangle must be zero and stays zero). */
  invLower(l: Float64Array, n: number): void;
  /**
   * U upper-triangular with Uᵀ·U = H⁻¹ (GPTQ's Hinv), or null when H is not positive definite (see
   * cholesky). H is not modified unless it is passed as `out` (then it is overwritten by U or garbage).
   */
  cholInverseUpper(h: Float64Array, n: number, opts?: { pivotTol?: number; out?: Float64Array }): Float64Array | null;
  /**
   * An n×n Float64Array inside this implementation's own workspace (wasm: a view on the linalg memory), so
   * that a matrix accumulated there is factored by cholInverseUpperInPlace without any copy. Contents are
   * unspecified; valid until matrix() is called with a larger n, or dispose().
   */
  matrix(n: number): Float64Array;
  /**
   * In place: the symmetric matrix H in h -> U, exactly as cholInverseUpper(h, n, { out: h }) but copying
   * nothing when h is matrix(n). Returns false when H is not (numerically) positive definite; h then holds
   * H again except on its diagonal, which the caller rewrites (e.g. with more damping) before a retry.
   */
  cholInverseUpperInPlace(h: Float64Array, n: number, pivotTol?: number): boolean;
  dispose(): void | Promise<void>;
}

export const DEFAULT_NB = 64;

/** The TypeScript Gemm64 (oracle): exact loop bounds, f64 accumulation. */
export const tsGemm64: Gemm64 = (buf, c, ldc, a, lda, b, ldb, transB, m, n, k, alpha, tri, triOff) => {
  for (let i = 0; i < m; i++) {
    const nEnd = tri === 1 ? Math.min(n, i + triOff + 1) : n;
    const kEnd = tri === 2 ? Math.min(k, i + triOff + 1) : k;
    const ci = c + i * ldc;
    const ai = a + i * lda;
    if (transB) {
      for (let j = 0; j < nEnd; j++) {
        const bj = b + j * ldb;
        let s = 0;
        for (let p = 0; p < kEnd; p++) s += buf[ai + p]! * buf[bj + p]!;
        buf[ci + j] += alpha * s;
      }
    } else {
      for (let p = 0; p < kEnd; p++) {
        const f = alpha * buf[ai + p]!;
        if (f === 0) continue;
        const bp = b + p * ldb;
        for (let j = 0; j < nEnd; j++) buf[ci + j] += f * buf[bp + j]!;
      }
    }
  }
};

/** Where a blocked driver works: the matrix and two scratch areas (≥ n·nb each) inside `buf`. */
export interface Workspace {
  buf: Float64Array;
  gemm: Gemm64;
  nb: number;
  /** Offsets (elements) of two scratch areas of at least n·nb elements each. */
  t1: number;
  t2: number;
}

// Unblocked lower Cholesky of the jb×jb block at `off` (leading dim ld). diag0: original diagonal.
function potrfSmall(buf: Float64Array, off: number, ld: number, jb: number, diag0: Float64Array, d0: number, tol: number): boolean {
  for (let j = 0; j < jb; j++) {
    const rj = off + j * ld;
    let d = buf[rj + j]!;
    for (let p = 0; p < j; p++) d -= buf[rj + p]! * buf[rj + p]!;
    if (!(d > tol * diag0[d0 + j]!) || !Number.isFinite(d)) return false;
    const ljj = Math.sqrt(d);
    buf[rj + j] = ljj;
    for (let i = j + 1; i < jb; i++) {
      const ri = off + i * ld;
      let s = buf[ri + j]!;
      for (let p = 0; p < j; p++) s -= buf[ri + p]! * buf[rj + p]!;
      buf[ri + j] = s / ljj;
    }
  }
  return true;
}

// In place: the jb×jb lower-triangular block at `off` (leading dim ld) -> its inverse (column-wise
// forward substitution; each entry is read before it is overwritten).
function invLowerSmall(buf: Float64Array, off: number, ld: number, jb: number): void {
  for (let j = 0; j < jb; j++) {
    const xjj = 1 / buf[off + j * ld + j]!;
    buf[off + j * ld + j] = xjj;
    for (let i = j + 1; i < jb; i++) {
      const ri = off + i * ld;
      let s = buf[ri + j]! * xjj; // p = j term: L[i][j] · X[j][j]
      for (let p = j + 1; p < i; p++) s += buf[ri + p]! * buf[off + p * ld + j]!;
      buf[ri + j] = -s / buf[ri + i]!;
    }
  }
}

function zeroUpper(buf: Float64Array, a: number, n: number): void {
  for (let i = 0; i < n; i++) buf.fill(0, a + i * n + i + 1, a + (i + 1) * n);
}

/** Blocked right-looking lower Cholesky of the n×n matrix at ws.buf[a ..] (see Linalg64.cholesky). */
export function choleskyBlocked(ws: Workspace, a: number, n: number, pivotTol = 0): boolean {
  const { buf, gemm, nb, t1, t2 } = ws;
  const diag0 = new Float64Array(n); // (n,) original diagonal, for the relative pivot test
  for (let i = 0; i < n; i++) diag0[i] = buf[a + i * n + i]!;
  for (let j0 = 0; j0 < n; j0 += nb) {
    const jb = Math.min(nb, n - j0);
    const ajj = a + j0 * n + j0;
    if (!potrfSmall(buf, ajj, n, jb, diag0, j0, pivotTol)) return false;
    const rem = n - j0 - jb;
    if (rem === 0) break;
    // panel L[R,J] = A[R,J] · L[J,J]⁻ᵀ: Linv (jb, jb) at t2, T = A[R,J] (rem, jb) at t1, L[R,J] = T · Linvᵀ
    for (let i = 0; i < jb; i++) {
      buf.fill(0, t2 + i * jb, t2 + (i + 1) * jb);
      for (let p = 0; p <= i; p++) buf[t2 + i * jb + p] = buf[ajj + i * n + p]!;
    }
    invLowerSmall(buf, t2, jb, jb);
    const arj = a + (j0 + jb) * n + j0; // A[R, J]
    for (let i = 0; i < rem; i++) {
      const src = arj + i * n;
      buf.copyWithin(t1 + i * jb, src, src + jb);
      buf.fill(0, src, src + jb);
    }
    gemm(buf, arj, n, t1, jb, t2, jb, true, rem, jb, jb, 1, 0, 0);
    // trailing A[R,R] −= L[R,J] · L[R,J]ᵀ, lower triangle only
    gemm(buf, a + (j0 + jb) * n + j0 + jb, n, arj, n, arj, n, true, rem, rem, jb, -1, 1, 0);
  }
  zeroUpper(buf, a, n);
  return true;
}

/** Blocked in-place inverse of the lower-triangular n×n matrix at ws.buf[a ..] (upper part zero). */
export function invLowerBlocked(ws: Workspace, a: number, n: number): void {
  const { buf, gemm, nb, t1, t2 } = ws;
  const last = Math.floor((n - 1) / nb) * nb;
  for (let j0 = last; j0 >= 0; j0 -= nb) {
    const jb = Math.min(nb, n - j0);
    const r0 = j0 + jb;
    const rem = n - r0;
    const ajj = a + j0 * n + j0;
    if (rem > 0) {
      // T = L[R,J] (rem, jb) at t1; M = X[R,R] · T (rem, jb) at t2 (X[R,R] lower: tri = 2)
      for (let i = 0; i < rem; i++) {
        const src = a + (r0 + i) * n + j0;
        buf.copyWithin(t1 + i * jb, src, src + jb);
      }
      buf.fill(0, t2, t2 + rem * jb);
      gemm(buf, t2, jb, a + r0 * n + r0, n, t1, jb, false, rem, jb, rem, 1, 2, 0);
    }
    invLowerSmall(buf, ajj, n, jb);
    if (rem > 0) {
      // X[R,J] = −M · X[J,J]
      const xrj = a + r0 * n + j0;
      for (let i = 0; i < rem; i++) buf.fill(0, xrj + i * n, xrj + i * n + jb);
      gemm(buf, xrj, n, t2, jb, ajj, n, false, rem, jb, jb, -1, 0, 0);
    }
  }
}

/**
 * Strictly-upper entries within this many columns of the diagonal that choleskyBlocked may overwrite (a
 * tri = 1 Gemm64 writes whole 4-column panels: up to 3 past the diagonal); farther ones stay untouched.
 */
const BAND = 8;

/**
 * The body of cholInverseUpperInPlace on the n×n matrix at ws.buf[a ..]. On failure, the symmetric input
 * is restored from its untouched strict upper triangle (and the saved band next to the diagonal); the
 * diagonal is left as garbage.
 */
export function cholInverseUpperWs(ws: Workspace, a: number, n: number, pivotTol = 0): boolean {
  const buf = ws.buf;
  const mat = buf.subarray(a, a + n * n);
  mat.reverse(); // J·H·J
  const band = new Float64Array(n * BAND); // band[i·BAND + d − 1] = R[i, i + d]
  for (let i = 0; i < n; i++) {
    for (let d = 1; d <= BAND && i + d < n; d++) band[i * BAND + d - 1] = buf[a + i * n + i + d]!;
  }
  if (!choleskyBlocked(ws, a, n, pivotTol)) {
    for (let i = 0; i < n; i++) {
      const ri = a + i * n;
      for (let j = 0; j < i; j++) buf[ri + j] = i - j <= BAND ? band[j * BAND + i - j - 1]! : buf[a + j * n + i]!;
      for (let d = 1; d <= BAND && i + d < n; d++) buf[ri + i + d] = band[i * BAND + d - 1]!;
    }
    mat.reverse();
    return false;
  }
  invLowerBlocked(ws, a, n);
  mat.reverse(); // U = J·L̃⁻¹·J
  return true;
}

/** True when view is exactly the n×n matrix `mat` (same memory, same offset). */
export function isSameMatrix(view: Float64Array, mat: Float64Array | undefined, n: number): boolean {
  return !!mat && view.buffer === mat.buffer && view.byteOffset === mat.byteOffset && view.length >= n * n && mat.length >= n * n;
}

/** A Linalg64 running the blocked drivers with the TypeScript kernel (the oracle). */
export function createTsLinalg64(opts: { nb?: number } = {}): Linalg64 {
  const nb = opts.nb ?? DEFAULT_NB;
  let own: Float64Array | undefined; // matrix(): [matrix (n, n) | t1 | t2], kept for in-place factorizations
  let ownN = 0;
  // one combined array [matrix (n, n) | t1 (n·nb) | t2 (n·nb)]
  const ws = (buf: Float64Array, n: number): Workspace => ({ buf, gemm: tsGemm64, nb, t1: n * n, t2: n * n + n * nb });
  // Runs f on a combined array and copies the matrix back.
  const run = <T>(a: Float64Array, n: number, f: (w: Workspace) => T): T => {
    const all = new Float64Array(n * n + 2 * n * nb);
    all.set(a.subarray(0, n * n));
    const r = f(ws(all, n));
    a.set(all.subarray(0, n * n));
    return r;
  };
  return {
    name: 'ts',
    cholesky: (a, n, pivotTol = 0) => run(a, n, (w) => choleskyBlocked(w, 0, n, pivotTol)),
    invLower: (l, n) => run(l, n, (w) => invLowerBlocked(w, 0, n)),
    cholInverseUpper(h, n, o = {}) {
      const all = new Float64Array(n * n + 2 * n * nb);
      const mat = all.subarray(0, n * n);
      mat.set(h.subarray(0, n * n));
      mat.reverse(); // J·H·J
      const w = ws(all, n);
      if (!choleskyBlocked(w, 0, n, o.pivotTol ?? 0)) return null;
      invLowerBlocked(w, 0, n);
      mat.reverse(); // U = J·L̃⁻¹·J
      const out = o.out ?? new Float64Array(n * n);
      out.set(mat);
      return out;
    },
    matrix(n) {
      if (!own || own.length < n * n + 2 * n * nb) own = new Float64Array(n * n + 2 * n * nb);
      ownN = n;
      return own.subarray(0, n * n);
    },
    cholInverseUpperInPlace(h, n, pivotTol = 0) {
      if (own && ownN === n && isSameMatrix(h, own.subarray(0, n * n), n)) return cholInverseUpperWs(ws(own, n), 0, n, pivotTol);
      const all = new Float64Array(n * n + 2 * n * nb);
      all.set(h.subarray(0, n * n));
      const ok = cholInverseUpperWs(ws(all, n), 0, n, pivotTol);
      h.set(all.subarray(0, n * n));
      return ok;
    },
    dispose() {
      own = undefined;
    },
  };
}

/** The shared TypeScript instance. */
export const tsLinalg64: Linalg64 = createTsLinalg64();
