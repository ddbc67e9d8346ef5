import { eigs } from 'mathjs';
import { describe, expect, it } from 'vitest';
import { denseSvd, reconstructSvd, symmetricEigen } from '../../src/lowrank/dense-svd.js';
import { frob2, matmul64, matrixWithSpectrum, orthoError, randomMatrix, randomOrthonormal, transpose64 } from './lowrank-helpers.js';

const rows = (a: Float64Array, m: number, n: number): number[][] =>
  Array.from({ length: m }, (_, i) => Array.from(a.subarray(i * n, (i + 1) * n)));

/** mathjs eigenvalues of a symmetric matrix, descending. */
function mathjsEigenvalues(a: Float64Array, n: number): number[] {
  const r = eigs(rows(a, n, n));
  return (r.values as unknown as number[]).map(Number).sort((x, y) => y - x);
}

function symmetrize(b: Float64Array, n: number): Float64Array {
  const a = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) a[i * n + j] = 0.5 * (b[i * n + j]! + b[j * n + i]!);
  return a;
}

describe('symmetricEigen', () => {
  it.each([1, 2, 5, 12, 24])('matches mathjs eigs and reconstructs A = QΛQᵀ (n = %i, indefinite)', (n) => {
    const a = symmetrize(randomMatrix(n, n, 100 + n), n);
    const { values, vectors } = symmetricEigen(a, n);
    const ref = mathjsEigenvalues(a, n);
    const scale = Math.max(...ref.map(Math.abs));
    for (let i = 0; i < n; i++) expect(Math.abs(values[i]! - ref[i]!)).toBeLessThan(1e-12 * scale);
    for (let i = 1; i < n; i++) expect(values[i]!).toBeLessThanOrEqual(values[i - 1]!);
    expect(orthoError(vectors, n, n)).toBeLessThan(1e-13);
    const ql = new Float64Array(n * n);
    for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) ql[i * n + j] = vectors[i * n + j]! * values[j]!;
    const back = matmul64(ql, transpose64(vectors, n, n), n, n, n);
    expect(Math.sqrt(frob2(back, a) / frob2(a))).toBeLessThan(1e-13);
    // each column is an eigenvector: A·q = λ·q
    const aq = matmul64(a, vectors, n, n, n);
    for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) expect(Math.abs(aq[i * n + j]! - values[j]! * vectors[i * n + j]!)).toBeLessThan(1e-12 * scale);
  });

  it('handles repeated eigenvalues (projector plus identity)', () => {
    const n = 9;
    // A = 3·P + 1·(I − P), P a rank-4 orthogonal projector: eigenvalues 3 (×4) and 1 (×5)
    const q = randomOrthonormal(n, 4, 7);
    const a = matmul64(q, transpose64(q, n, 4), n, 4, n);
    for (let i = 0; i < n * n; i++) a[i] *= 2;
    for (let i = 0; i < n; i++) a[i * n + i] += 1;
    const { values, vectors } = symmetricEigen(symmetrize(a, n), n);
    expect(Array.from(values).map((v) => Math.round(v * 1e9) / 1e9)).toEqual([3, 3, 3, 3, 1, 1, 1, 1, 1]);
    expect(orthoError(vectors, n, n)).toBeLessThan(1e-13);
    expect(mathjsEigenvalues(symmetrize(a, n), n).map((v) => Math.round(v * 1e9) / 1e9)).toEqual([3, 3, 3, 3, 1, 1, 1, 1, 1]);
  });
});

describe('denseSvd', () => {
  const shapes: Array<[number, number]> = [[1, 1], [1, 6], [6, 1], [8, 8], [13, 5], [5, 13], [30, 17]];
  const modes = shapes.flatMap(([m, n]) => [[m, n, true], [m, n, false]] as Array<[number, number, boolean]>);
  it.each(modes)('A (%i×%i) = UΣVᵀ, orthonormal U and V, σ² = eigs(AᵀA) from mathjs (QR-preconditioned: %s)', (m, n, precondition) => {
    const a = randomMatrix(m, n, m * 31 + n);
    const d = denseSvd(a, m, n, { precondition });
    const p = Math.min(m, n);
    expect(d.p).toBe(p);
    expect(Math.sqrt(frob2(reconstructSvd(d), a) / frob2(a))).toBeLessThan(1e-13);
    expect(orthoError(d.u, m, p)).toBeLessThan(1e-13);
    expect(orthoError(d.v, n, p)).toBeLessThan(1e-13);
    for (let i = 1; i < p; i++) expect(d.s[i]!).toBeLessThanOrEqual(d.s[i - 1]!);
    // singular values² are the top-p eigenvalues of the Gram matrix of the smaller side
    const gram = m >= n ? matmul64(transpose64(a, m, n), a, n, m, n) : matmul64(a, transpose64(a, m, n), m, n, m);
    const ref = mathjsEigenvalues(gram, p);
    for (let i = 0; i < p; i++) expect(Math.abs(d.s[i]! ** 2 - ref[i]!)).toBeLessThan(1e-11 * ref[0]!);
  });

  it.each([true, false])('rank-deficient input: exact zeros, completed orthonormal U, exact reconstruction (preconditioned: %s)', (precondition) => {
    const m = 12;
    const n = 9;
    const a = matrixWithSpectrum(m, n, [5, 3, 0.5], 21); // rank 3
    const d = denseSvd(a, m, n, { precondition });
    expect(d.s[0]).toBeCloseTo(5, 12);
    expect(d.s[1]).toBeCloseTo(3, 12);
    expect(d.s[2]).toBeCloseTo(0.5, 12);
    for (let i = 3; i < 9; i++) expect(d.s[i]!).toBeLessThan(1e-13);
    expect(orthoError(d.u, m, 9)).toBeLessThan(1e-12);
    expect(orthoError(d.v, n, 9)).toBeLessThan(1e-12);
    expect(Math.sqrt(frob2(reconstructSvd(d), a) / frob2(a))).toBeLessThan(1e-13);
    // the zero matrix and a single nonzero row
    const z = denseSvd(new Float64Array(4 * 3), 4, 3, { precondition });
    expect(Array.from(z.s)).toEqual([0, 0, 0]);
    expect(orthoError(z.u, 4, 3)).toBeLessThan(1e-15);
    const one = new Float64Array(4 * 3);
    one.set([3, 0, 4], 3);
    const d1 = denseSvd(one, 4, 3, { precondition });
    expect(d1.s[0]).toBeCloseTo(5, 14);
    expect(orthoError(d1.u, 4, 3)).toBeLessThan(1e-14);
  });

  it('repeated singular values: all copies found, subspaces orthonormal', () => {
    const m = 10;
    const n = 7;
    const s = [4, 4, 4, 1, 1, 0.25, 0.25];
    const a = matrixWithSpectrum(m, n, s, 33);
    const d = denseSvd(a, m, n);
    for (let i = 0; i < n; i++) expect(Math.abs(d.s[i]! - s[i]!)).toBeLessThan(1e-13);
    expect(orthoError(d.u, m, n)).toBeLessThan(1e-13);
    expect(orthoError(d.v, n, n)).toBeLessThan(1e-13);
    expect(Math.sqrt(frob2(reconstructSvd(d), a) / frob2(a))).toBeLessThan(1e-13);
  });

  it('best rank-r error is the sum of discarded σ² (Eckart–Young), widely spread spectrum', () => {
    const m = 16;
    const n = 11;
    const s = Array.from({ length: n }, (_, i) => 10 ** (-i)); // 1 … 1e-10
    const a = matrixWithSpectrum(m, n, s, 5);
    const d = denseSvd(a, m, n);
    // high relative accuracy of the small singular values (one-sided Jacobi)
    for (let i = 0; i < n; i++) expect(Math.abs(d.s[i]! - s[i]!) / s[i]!).toBeLessThan(1e-5);
    for (const r of [1, 3, 6]) {
      const err = frob2(reconstructSvd(d, r), a);
      const tail = s.slice(r).reduce((x, y) => x + y * y, 0);
      expect(Math.abs(err - tail)).toBeLessThan(1e-8 * tail);
    }
  });

  it('the QR-preconditioned fast path equals the plain one-sided Jacobi reference (same σ, same subspaces)', () => {
    for (const [m, n] of [[40, 25], [25, 40], [30, 30]] as const) {
      const a = matrixWithSpectrum(m, n, Array.from({ length: Math.min(m, n) }, (_, i) => 0.8 ** i), m + n);
      const fast = denseSvd(a, m, n);
      const ref = denseSvd(a, m, n, { precondition: false });
      for (let i = 0; i < fast.p; i++) expect(Math.abs(fast.s[i]! - ref.s[i]!)).toBeLessThan(1e-13);
      for (const r of [3, 10]) expect(Math.sqrt(frob2(reconstructSvd(fast, r), reconstructSvd(ref, r)) / frob2(reconstructSvd(ref, r)))).toBeLessThan(1e-11);
    }
  });

  it('rejects bad shapes and non-finite values with typed errors', () => {
    expect(() => denseSvd(new Float64Array(3), 2, 2)).toThrow(expect.objectContaining({ code: 'E_LOWRANK_SHAPE' }));
    expect(() => denseSvd(Float64Array.from([1, NaN, 0, 1]), 2, 2)).toThrow(expect.objectContaining({ code: 'E_LOWRANK_NONFINITE' }));
    expect(() => symmetricEigen(new Float64Array(4), 0)).toThrow(expect.objectContaining({ code: 'E_LOWRANK_SHAPE' }));
  });
});
