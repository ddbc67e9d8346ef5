/** Shared test helpers for the lowrank-*.test.ts files: seeded data and plain float64 reference loops. */

/** mulberry32 uniform [0, 1). */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Standard normal sampler (Box–Muller) from a seed. */
export function gaussian(seed: number): () => number {
  const u = prng(seed);
  return () => Math.sqrt(-2 * Math.log(1 - u())) * Math.cos(2 * Math.PI * u());
}

export function randomMatrix(m: number, n: number, seed: number): Float64Array {
  const g = gaussian(seed);
  return Float64Array.from({ length: m * n }, () => g());
}

/** C (m, n) = A (m, k) · B (k, n), plain triple loop in float64. */
export function matmul64(a: ArrayLike<number>, b: ArrayLike<number>, m: number, k: number, n: number): Float64Array {
  const c = new Float64Array(m * n);
  for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) {
    let s = 0;
    for (let p = 0; p < k; p++) s += a[i * k + p]! * b[p * n + j]!;
    c[i * n + j] = s;
  }
  return c;
}

export function transpose64(a: ArrayLike<number>, m: number, n: number): Float64Array {
  const t = new Float64Array(m * n);
  for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) t[j * m + i] = a[i * n + j]!;
  return t;
}

/** Q (m, n), m ≥ n, orthonormal columns: classical Gram–Schmidt twice on a Gaussian matrix. */
export function randomOrthonormal(m: number, n: number, seed: number): Float64Array {
  const cols = transpose64(randomMatrix(m, n, seed), m, n); // (n, m) rows = columns
  for (let j = 0; j < n; j++) {
    const cj = cols.subarray(j * m, (j + 1) * m);
    for (let pass = 0; pass < 2; pass++) {
      for (let c = 0; c < j; c++) {
        const cc = cols.subarray(c * m, (c + 1) * m);
        let d = 0;
        for (let i = 0; i < m; i++) d += cc[i]! * cj[i]!;
        for (let i = 0; i < m; i++) cj[i] -= d * cc[i]!;
      }
    }
    let nrm = 0;
    for (let i = 0; i < m; i++) nrm += cj[i]! * cj[i]!;
    nrm = Math.sqrt(nrm);
    for (let i = 0; i < m; i++) cj[i] /= nrm;
  }
  return transpose64(cols, n, m);
}

/** A (m, n) = U·diag(s)·Vᵀ with random orthonormal U, V and the given singular values (length ≤ min(m, n)). */
export function matrixWithSpectrum(m: number, n: number, s: ArrayLike<number>, seed: number): Float64Array {
  const r = s.length;
  const u = randomOrthonormal(m, r, seed);
  const v = randomOrthonormal(n, r, seed + 1);
  const us = new Float64Array(m * r);
  for (let i = 0; i < m; i++) for (let c = 0; c < r; c++) us[i * r + c] = u[i * r + c]! * s[c]!;
  return matmul64(us, transpose64(v, n, r), m, r, n);
}

export function frob2(a: ArrayLike<number>, b?: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) {
    const d = a[i]! - (b ? b[i]! : 0);
    s += d * d;
  }
  return s;
}

/** max |QᵀQ − I| for Q (m, p) with orthonormal columns. */
export function orthoError(q: ArrayLike<number>, m: number, p: number): number {
  let worst = 0;
  for (let a = 0; a < p; a++) for (let b = 0; b < p; b++) {
    let s = 0;
    for (let i = 0; i < m; i++) s += q[i * p + a]! * q[i * p + b]!;
    worst = Math.max(worst, Math.abs(s - (a === b ? 1 : 0)));
  }
  return worst;
}
