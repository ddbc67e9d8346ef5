import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MatmulBackend } from '../../src/kernels/backend.js';
import { createScalarBackend } from '../../src/kernels/scalar-backend.js';
import { createWasmBackend } from '../../src/kernels/wasm-backend.js';
import { denseSvd } from '../../src/lowrank/dense-svd.js';
import {
  exactTruncatedSvd,
  gaussianPanel,
  orthonormalizeRows,
  randomizedSvd,
  randomizedSvdReference,
  type TruncatedSvd,
} from '../../src/lowrank/randomized-svd.js';
import { frob2, matrixWithSpectrum, orthoError, randomMatrix } from './lowrank-helpers.js';

function reconstruct(t: TruncatedSvd): Float64Array {
  const out = new Float64Array(t.m * t.n);
  for (let i = 0; i < t.m; i++) for (let c = 0; c < t.r; c++) {
    const f = t.u[i * t.r + c]! * t.s[c]!;
    for (let j = 0; j < t.n; j++) out[i * t.n + j] += f * t.v[j * t.r + c]!;
  }
  return out;
}

/** Decaying spectrum plus a small dense noise floor, as fp32. */
function decayingMatrix(m: number, n: number, seed: number, decay: (i: number) => number): Float32Array {
  const p = Math.min(m, n);
  const a = matrixWithSpectrum(m, n, Array.from({ length: p }, (_, i) => decay(i)), seed);
  return Float32Array.from(a);
}

describe('randomizedSvd', () => {
  let wasm: MatmulBackend;
  const scalar = createScalarBackend();
  beforeAll(async () => {
    wasm = await createWasmBackend({ threads: 2 });
  });
  afterAll(async () => {
    await wasm?.dispose();
  });

  const cases: Array<[string, number, number, number, (i: number) => number]> = [
    ['geometric 0.9^i, tall', 150, 90, 12, (i) => 0.9 ** i],
    ['power law (i+1)^-1, wide', 70, 160, 16, (i) => 1 / (i + 1)],
    ['slow decay (i+1)^-0.5', 120, 120, 20, (i) => 1 / Math.sqrt(i + 1)],
  ];

  it.each(cases)('%s: rank-r error within 3 percent of the exact truncated SVD; scalar and wasm agree', (_name, m, n, r, decay) => {
    const a = decayingMatrix(m, n, m + n + r, decay);
    const exact = exactTruncatedSvd(a, m, n, r);
    const exactErr = frob2(reconstruct(exact), a);
    // sanity: the exact error is the discarded spectrum
    const full = denseSvd(a, m, n);
    const tail = Array.from(full.s.slice(r)).reduce((x, y) => x + y * y, 0);
    expect(Math.abs(exactErr - tail) / tail).toBeLessThan(1e-9);
    for (const be of [scalar, wasm]) {
      const t = randomizedSvd(be, a, m, n, { rank: r, oversample: 10, powerIters: 2, seed: 3 });
      expect(t.r).toBe(r);
      const err = frob2(reconstruct(t), a);
      expect(err).toBeGreaterThanOrEqual(exactErr * (1 - 1e-5)); // cannot beat Eckart–Young (up to fp32)
      expect(err / exactErr).toBeLessThan(1.03);
      expect(orthoError(t.u, m, r)).toBeLessThan(1e-5);
      expect(orthoError(t.v, n, r)).toBeLessThan(1e-9);
      for (let i = 0; i < r; i++) expect(Math.abs(t.s[i]! - exact.s[i]!) / exact.s[0]!).toBeLessThan(0.02);
    }
    const ts = randomizedSvd(scalar, a, m, n, { rank: r, seed: 3 });
    const tw = randomizedSvd(wasm, a, m, n, { rank: r, seed: 3 });
    for (let i = 0; i < r; i++) expect(Math.abs(ts.s[i]! - tw.s[i]!)).toBeLessThan(1e-5 * ts.s[0]!);
  });

  it('power iterations help on a slowly decaying spectrum (q = 0 is worse than q = 2)', () => {
    const m = 140;
    const n = 100;
    const a = decayingMatrix(m, n, 9, (i) => 1 / Math.sqrt(i + 1));
    const r = 10;
    const exactErr = frob2(reconstruct(exactTruncatedSvd(a, m, n, r)), a);
    const e0 = frob2(reconstruct(randomizedSvd(scalar, a, m, n, { rank: r, powerIters: 0, oversample: 5, seed: 1 })), a);
    const e2 = frob2(reconstruct(randomizedSvd(scalar, a, m, n, { rank: r, powerIters: 2, oversample: 5, seed: 1 })), a);
    expect(e0 / exactErr).toBeGreaterThan(e2 / exactErr);
    expect(e2 / exactErr).toBeLessThan(1.03);
  });

  it('the backend path equals the float64 reference (same Ω) up to fp32 rounding', () => {
    const m = 90;
    const n = 60;
    const a = decayingMatrix(m, n, 4, (i) => 0.85 ** i);
    const ref = randomizedSvdReference(a, m, n, { rank: 8, seed: 11 });
    for (const be of [scalar, wasm]) {
      const t = randomizedSvd(be, a, m, n, { rank: 8, seed: 11 });
      for (let i = 0; i < 8; i++) expect(Math.abs(t.s[i]! - ref.s[i]!)).toBeLessThan(1e-5 * ref.s[0]!);
      expect(Math.sqrt(frob2(reconstruct(t), reconstruct(ref)) / frob2(reconstruct(ref)))).toBeLessThan(1e-4);
    }
  });

  it('recovers a rank-deficient matrix exactly (rank 5 < l), and falls back to the dense SVD when l ≥ min(m, n)', () => {
    const m = 80;
    const n = 50;
    const a = Float32Array.from(matrixWithSpectrum(m, n, [9, 7, 5, 3, 1], 2));
    const t = randomizedSvd(wasm, a, m, n, { rank: 8, seed: 5 });
    expect(Math.sqrt(frob2(reconstruct(t), a) / frob2(a))).toBeLessThan(1e-5);
    expect(Array.from(t.s.slice(0, 5)).map((x) => Math.round(x * 1e3) / 1e3)).toEqual([9, 7, 5, 3, 1]);
    expect(orthoError(t.u, m, 8)).toBeLessThan(1e-5);
    const small = Float32Array.from(randomMatrix(12, 9, 8));
    const f = randomizedSvd(wasm, small, 12, 9, { rank: 4 });
    const ex = exactTruncatedSvd(small, 12, 9, 4);
    expect(Array.from(f.s)).toEqual(Array.from(ex.s));
  });

  it('orthonormalizeRows: orthonormal rows spanning the input; dependent rows become zero', () => {
    const l = 6;
    const len = 20;
    const p = gaussianPanel(l, len, 1);
    p.copyWithin(3 * len, 1 * len, 2 * len); // row 3 = row 1
    orthonormalizeRows(p, l, len);
    const rowsOk = [0, 1, 2, 4, 5];
    for (const a of rowsOk) for (const b of rowsOk) {
      let s = 0;
      for (let i = 0; i < len; i++) s += p[a * len + i]! * p[b * len + i]!;
      expect(Math.abs(s - (a === b ? 1 : 0))).toBeLessThan(1e-14);
    }
    // a duplicated row leaves only rounding noise before normalization; either zero or orthogonal to the rest
    for (const b of rowsOk) {
      let s = 0;
      for (let i = 0; i < len; i++) s += p[3 * len + i]! * p[b * len + i]!;
      expect(Math.abs(s)).toBeLessThan(1e-8);
    }
    // same seed → same panel; different seed → different panel
    expect(Array.from(gaussianPanel(3, 5, 7))).toEqual(Array.from(gaussianPanel(3, 5, 7)));
    expect(Array.from(gaussianPanel(3, 5, 7))).not.toEqual(Array.from(gaussianPanel(3, 5, 8)));
  });

  it('rejects bad ranks with a typed error', () => {
    expect(() => randomizedSvd(scalar, new Float32Array(6), 2, 3, { rank: 0 })).toThrow(expect.objectContaining({ code: 'E_LOWRANK_RANK' }));
    expect(() => randomizedSvd(scalar, new Float32Array(5), 2, 3, { rank: 1 })).toThrow(expect.objectContaining({ code: 'E_LOWRANK_SHAPE' }));
  });
});
