import { inv, lup, lusolve, multiply } from 'mathjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTsLinalg64, tsLinalg64, type Linalg64 } from '../../src/quantizers/linalg64.js';
import { createWasmLinalg64 } from '../../src/quantizers/linalg64-wasm.js';

/** mulberry32: small seeded PRNG, uniform [0, 1). */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A random SPD matrix B·Bᵀ/m + ridge·I (n, n), row-major. */
function randomSpd(n: number, seed: number, ridge = 0.1): Float64Array {
  const rand = prng(seed);
  const m = n + 3;
  const b = Array.from({ length: n * m }, () => rand() * 2 - 1);
  const a = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j <= i; j++) {
      let s = 0;
      for (let p = 0; p < m; p++) s += b[i * m + p]! * b[j * m + p]!;
      a[i * n + j] = a[j * n + i] = s / m + (i === j ? ridge : 0);
    }
  }
  return a;
}

const toRows = (a: Float64Array, n: number): number[][] =>
  Array.from({ length: n }, (_, i) => Array.from(a.subarray(i * n, (i + 1) * n)));
const flat = (m: number[][]): Float64Array => Float64Array.from(m.flat());
const transpose = (a: Float64Array, n: number): Float64Array => {
  const t = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) t[j * n + i] = a[i * n + j]!;
  return t;
};
function maxRelDiff(got: Float64Array, want: Float64Array): number {
  let m = 0;
  let scale = 0;
  for (let i = 0; i < want.length; i++) scale = Math.max(scale, Math.abs(want[i]!));
  for (let i = 0; i < want.length; i++) m = Math.max(m, Math.abs(got[i]! - want[i]!));
  return m / scale;
}
function expectUpperZero(a: Float64Array, n: number, lower: boolean): void {
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) if (lower ? j > i : j < i) expect(a[i * n + j]).toBe(0);
  }
}

const SIZES = [1, 2, 5, 16, 17, 37, 64, 65, 130];

function suite(label: string, get: () => Linalg64): void {
  describe(`linalg64 (${label})`, () => {
    it.each(SIZES)('cholesky: L·Lᵀ = A, L lower with a positive diagonal (n = %i)', (n) => {
      const a = randomSpd(n, 100 + n);
      const l = a.slice();
      expect(get().cholesky(l, n)).toBe(true);
      expectUpperZero(l, n, true);
      for (let i = 0; i < n; i++) expect(l[i * n + i]).toBeGreaterThan(0);
      const llt = flat(multiply(toRows(l, n), toRows(transpose(l, n), n)) as number[][]);
      expect(maxRelDiff(llt, a)).toBeLessThan(1e-13);
    });

    it.each(SIZES)('invLower matches mathjs inv (n = %i)', (n) => {
      const l = randomSpd(n, 200 + n);
      expect(get().cholesky(l, n)).toBe(true);
      const want = flat(inv(toRows(l, n)) as number[][]);
      const x = l.slice();
      get().invLower(x, n);
      expectUpperZero(x, n, true);
      expect(maxRelDiff(x, want)).toBeLessThan(1e-11);
    });

    it.each(SIZES)('cholInverseUpper: Uᵀ·U = H⁻¹ and equals torch-style chol(chol_inverse(chol(H)), upper) (n = %i)', (n) => {
      const h = randomSpd(n, 300 + n);
      const h0 = h.slice();
      const u = get().cholInverseUpper(h, n);
      expect(u).not.toBeNull();
      expect(h).toEqual(h0); // input untouched
      expectUpperZero(u!, n, false);
      const hinv = flat(inv(toRows(h, n)) as number[][]);
      const utu = flat(multiply(toRows(transpose(u!, n), n), toRows(u!, n)) as number[][]);
      expect(maxRelDiff(utu, hinv)).toBeLessThan(1e-11);
      // the three-step path: H⁻¹ by mathjs (LU solves of H·x = e_j), then its lower Cholesky L2; U = L2ᵀ
      const f = lup(toRows(h, n));
      const l2 = new Float64Array(n * n);
      for (let j = 0; j < n; j++) {
        const x = lusolve(f, Array.from({ length: n }, (_, i) => (i === j ? 1 : 0)));
        const col = (Array.isArray(x) ? x : x.valueOf()) as number[][];
        for (let i = 0; i < n; i++) l2[i * n + j] = col[i]![0]!;
      }
      for (let i = 0; i < n; i++) for (let j = 0; j < i; j++) l2[i * n + j] = l2[j * n + i] = (l2[i * n + j]! + l2[j * n + i]!) / 2;
      expect(tsLinalg64.cholesky(l2, n)).toBe(true);
      expect(maxRelDiff(u!, transpose(l2, n))).toBeLessThan(1e-10);
    });

    it('cholesky reports an indefinite or singular matrix instead of producing NaN', () => {
      const n = 70;
      const a = randomSpd(n, 7);
      for (let i = 0; i < n; i++) a[i * n + i] -= 3; // shift the spectrum below 0
      expect(get().cholesky(a.slice(), n)).toBe(false);
      expect(get().cholInverseUpper(a, n)).toBeNull();
      // rank-1 (PSD, singular): fails with a relative pivot tolerance
      const v = Float64Array.from({ length: n }, (_, i) => 1 + (i % 3));
      const r1 = new Float64Array(n * n);
      for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) r1[i * n + j] = v[i]! * v[j]!;
      expect(get().cholesky(r1.slice(), n, 1e-10)).toBe(false);
      expect(get().cholInverseUpper(r1, n, { pivotTol: 1e-10 })).toBeNull();
    });

    it('writes U into `out` when given', () => {
      const n = 40;
      const h = randomSpd(n, 9);
      const out = new Float64Array(n * n);
      const u = get().cholInverseUpper(h, n, { out });
      expect(u).toBe(out);
      const again = get().cholInverseUpper(h, n, { out: h });
      expect(again).toBe(h);
      expect(maxRelDiff(h, out)).toBe(0);
    });

    it.each([5, 64, 130, 333])('cholInverseUpperInPlace on matrix(n) and on a plain array = cholInverseUpper, value for value (n = %i)', (n) => {
      const h = randomSpd(n, 500 + n);
      const want = get().cholInverseUpper(h, n)!;
      const m = get().matrix(n);
      expect(m.length).toBe(n * n);
      m.set(h);
      expect(get().cholInverseUpperInPlace(m, n)).toBe(true);
      expect(m).toEqual(want);
      const plain = h.slice();
      expect(get().cholInverseUpperInPlace(plain, n)).toBe(true);
      expect(plain).toEqual(want);
    });

    it.each([70, 200, 333])('a failed in-place factorization gives H back except its diagonal (n = %i)', (n) => {
      const a = randomSpd(n, 600 + n);
      // indefinite late in the factorization: the failure comes after many trailing updates
      for (let i = 0; i < Math.ceil(n * 0.2); i++) a[i * n + i] -= 3; // (J·H·J: the last rows factored)
      for (const target of [get().matrix(n), new Float64Array(n * n)]) {
        target.set(a);
        expect(get().cholInverseUpperInPlace(target, n)).toBe(false);
        for (let i = 0; i < n; i++) target[i * n + i] = a[i * n + i]!;
        expect(target).toEqual(a);
      }
    });
  });
}

suite('typescript, nb = 64', () => tsLinalg64);
const small = createTsLinalg64({ nb: 8 });
suite('typescript, nb = 8', () => small);

let wasmLin: Linalg64;
beforeAll(async () => {
  wasmLin = await createWasmLinalg64({ threads: 2, nb: 16 });
});
afterAll(async () => {
  await wasmLin?.dispose();
});
suite('wasm f64x2, 2 threads, nb = 16', () => wasmLin);

describe('linalg64: wasm kernel vs the TypeScript oracle', () => {
  it.each([3, 63, 200, 333])('cholesky and cholInverseUpper agree (n = %i)', (n) => {
    const h = randomSpd(n, 400 + n);
    const a = h.slice();
    const b = h.slice();
    expect(tsLinalg64.cholesky(a, n)).toBe(true);
    expect(wasmLin.cholesky(b, n)).toBe(true);
    expect(maxRelDiff(b, a)).toBeLessThan(1e-12);
    const u1 = tsLinalg64.cholInverseUpper(h, n)!;
    const u2 = wasmLin.cholInverseUpper(h, n)!;
    expect(maxRelDiff(u2, u1)).toBeLessThan(1e-11);
  });
});
