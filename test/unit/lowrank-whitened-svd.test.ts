import { eigs } from 'mathjs';
import { describe, expect, it } from 'vitest';
import { createScalarBackend } from '../../src/kernels/scalar-backend.js';
import { dequantizeFactors, quantizeFactors } from '../../src/lowrank/factor-quant.js';
import {
  decomposeWhitened,
  expandFactors,
  factorsAtRank,
  factorizeLowRank,
  lowRankOutputError,
  rankForRatio,
  sensitivityCurve,
  sensitivityOf,
  type LowRankFactors,
} from '../../src/lowrank/whitened-svd.js';
import { MeanAbsAccumulator, createWhitening } from '../../src/lowrank/whitening.js';
import { frob2, matmul64, randomMatrix, transpose64 } from './lowrank-helpers.js';

const n = 24;
const k = 32;
const T = 200;

/** Calibration inputs with correlated channels and a few outlier channels (what makes whitening matter). */
function calibration(rows: number, seed: number): Float64Array {
  const z = randomMatrix(rows, k, seed);
  const mix = randomMatrix(k, k, seed + 1);
  for (let i = 0; i < k; i++) for (let j = 0; j < k; j++) mix[i * k + j] = (i === j ? 1 : 0) + 0.35 * mix[i * k + j]!;
  const x = matmul64(z, mix, rows, k, k);
  for (let r = 0; r < rows; r++) for (const c of [3, 17, 29]) x[r * k + c] *= 12; // outlier channels
  return x;
}

const X = calibration(T, 1);
const G = matmul64(transpose64(X, T, k), X, k, T, k); // XᵀX (k, k)
const W = Float32Array.from(randomMatrix(n, k, 2), (v) => v * 0.1);
const meanAbs = (() => {
  const acc = new MeanAbsAccumulator(k);
  acc.addBatch(X, T);
  return acc.mean();
})();
const stats = { xtx: G, meanAbs };

/** Brute force: ‖X·Wᵀ − X·(U·V)ᵀ‖_F² from the calibration rows themselves. */
function directOutputError(f: LowRankFactors, x = X, rows = T): number {
  const wt = transpose64(W, n, k);
  const at = transpose64(expandFactors(f), n, k);
  return frob2(matmul64(x, wt, rows, k, n), matmul64(x, at, rows, k, n));
}

/** Eigenvalues of W·G·Wᵀ (= squared singular values of X·Wᵀ), descending, from mathjs. */
function whitenedSpectrum(): number[] {
  const wg = matmul64(W, G, n, k, k);
  const m = matmul64(wg, transpose64(W, n, k), n, k, n);
  const rows = Array.from({ length: n }, (_, i) => Array.from(m.subarray(i * n, (i + 1) * n)));
  return (eigs(rows).values as unknown as number[]).map(Number).sort((a, b) => b - a);
}

describe('rankForRatio', () => {
  it('floor(keep·n·k/(n+k)), clamped to [1, min(n, k)], within the parameter budget', () => {
    expect(rankForRatio(256, 256, 0.9)).toBe(115);
    expect(rankForRatio(768, 256, 0.8)).toBe(153);
    expect(rankForRatio(256, 768, 0.7)).toBe(134);
    expect(rankForRatio(1, 1, 0.1)).toBe(1);
    expect(rankForRatio(10, 1000, 1)).toBe(9);
    for (const [a, b, keep] of [[256, 256, 0.9], [768, 256, 0.7], [4096, 11008, 0.8]] as const) {
      const r = rankForRatio(a, b, keep);
      expect((a + b) * r).toBeLessThanOrEqual(keep * a * b);
      expect((a + b) * (r + 1)).toBeGreaterThan(keep * a * b);
    }
    expect(() => rankForRatio(4, 4, 0)).toThrow(expect.objectContaining({ code: 'E_LOWRANK_RATIO' }));
    expect(() => rankForRatio(4, 4, 1.5)).toThrow(expect.objectContaining({ code: 'E_LOWRANK_RATIO' }));
  });
});

describe('factorizeLowRank', () => {
  it('SVD-LLM: the output error equals the sum of the discarded whitened σ² (mathjs eigs of W·XᵀX·Wᵀ) and beats plain and ASVD', () => {
    const spec = whitenedSpectrum();
    for (const r of [2, 8, 16]) {
      const f = factorizeLowRank(W, n, k, { method: 'svdllm', rank: r, stats });
      expect(f.damp).toBe(0);
      expect(f.r).toBe(r);
      for (let i = 0; i < r; i++) expect(Math.abs(f.sigma[i]! ** 2 - spec[i]!) / spec[0]!).toBeLessThan(1e-10);
      const tail = spec.slice(r).reduce((a, b) => a + b, 0);
      const direct = directOutputError(f);
      expect(Math.abs(direct - tail) / tail).toBeLessThan(1e-5); // fp32 factors
      expect(Math.abs(lowRankOutputError(W, f, G) - direct) / direct).toBeLessThan(1e-9);
      const plain = directOutputError(factorizeLowRank(W, n, k, { method: 'plain', rank: r }));
      const asvd = directOutputError(factorizeLowRank(W, n, k, { method: 'asvd', rank: r, stats }));
      expect(direct).toBeLessThan(plain);
      expect(direct).toBeLessThan(asvd);
      // this input has outlier channels: ASVD's diagonal scaling already helps over plain SVD
      expect(asvd).toBeLessThan(plain);
    }
  });

  it('plain SVD is the Frobenius-optimal truncation of W (Eckart–Young vs a float64 reference)', () => {
    const r = 6;
    const f = factorizeLowRank(W, n, k, { method: 'plain', rank: r });
    const wtw = matmul64(W, transpose64(W, n, k), n, k, n);
    const ev = (eigs(Array.from({ length: n }, (_, i) => Array.from(wtw.subarray(i * n, (i + 1) * n)))).values as unknown as number[])
      .map(Number)
      .sort((a, b) => b - a);
    const tail = ev.slice(r).reduce((a, b) => a + b, 0);
    expect(Math.abs(frob2(expandFactors(f), W) - tail) / tail).toBeLessThan(1e-5);
  });

  it('full rank reconstructs W for every method; split sqrt gives the same product as left', () => {
    for (const method of ['plain', 'asvd', 'svdllm'] as const) {
      const full = factorizeLowRank(W, n, k, { method, rank: 1000, stats });
      expect(full.r).toBe(n);
      expect(Math.sqrt(frob2(expandFactors(full), W) / frob2(W))).toBeLessThan(1e-5);
      const left = factorizeLowRank(W, n, k, { method, rank: 7, stats, split: 'left' });
      const sqrt = factorizeLowRank(W, n, k, { method, rank: 7, stats, split: 'sqrt' });
      expect(Math.sqrt(frob2(expandFactors(left), expandFactors(sqrt)) / frob2(expandFactors(left)))).toBeLessThan(1e-5);
    }
  });

  it('ASVD with α = 0 is plain SVD; the inverse scaling is folded into V', () => {
    const a0 = factorizeLowRank(W, n, k, { method: 'asvd', rank: 5, stats, alpha: 0 });
    const p = factorizeLowRank(W, n, k, { method: 'plain', rank: 5 });
    expect(Math.sqrt(frob2(expandFactors(a0), expandFactors(p)) / frob2(expandFactors(p)))).toBeLessThan(1e-5);
    // ASVD's factor is the plain SVD of W·diag(s) with the scaling undone: (U·V)·diag(s) = best approx of W·diag(s)
    const s = Array.from(meanAbs, (m) => Math.sqrt(m));
    const ws = Float64Array.from(W, (v, i) => v * s[i % k]!);
    const f = factorizeLowRank(W, n, k, { method: 'asvd', rank: 5, stats });
    const scaled = Float64Array.from(expandFactors(f), (v, i) => v * s[i % k]!);
    const direct = factorizeLowRank(ws, n, k, { method: 'plain', rank: 5 });
    expect(Math.sqrt(frob2(scaled, expandFactors(direct)) / frob2(scaled))).toBeLessThan(1e-5);
  });

  it('SVD-LLM with fewer calibration rows than k: damping is raised, the result stays finite and still beats plain', () => {
    const few = 12;
    const xs = calibration(few, 9);
    const gs = matmul64(transpose64(xs, few, k), xs, k, few, k); // rank 12 < 32
    const f = factorizeLowRank(W, n, k, { method: 'svdllm', rank: 6, stats: { xtx: gs } });
    expect(f.damp).toBeGreaterThan(0);
    expect(f.damp).toBeLessThanOrEqual(1e-3);
    expect(Array.from(f.v).every(Number.isFinite)).toBe(true);
    const plain = factorizeLowRank(W, n, k, { method: 'plain', rank: 6 });
    expect(lowRankOutputError(W, f, gs)).toBeLessThan(lowRankOutputError(W, plain, gs));
  });

  it('the randomized solver matches the exact one within a few percent of output error', () => {
    const backend = createScalarBackend();
    for (const method of ['plain', 'svdllm'] as const) {
      const ex = lowRankOutputError(W, factorizeLowRank(W, n, k, { method, rank: 4, stats }), G);
      const rf = factorizeLowRank(W, n, k, { method, rank: 4, stats, solver: 'randomized', backend, randomized: { oversample: 4, powerIters: 2, seed: 1 } });
      const re = lowRankOutputError(W, rf, G);
      expect(re).toBeGreaterThanOrEqual(ex * (1 - 1e-4));
      expect(re / ex).toBeLessThan(1.05);
    }
    expect(() => factorizeLowRank(W, n, k, { method: 'plain', rank: 4, solver: 'randomized' })).toThrow(expect.objectContaining({ code: 'E_LOWRANK_OPTS' }));
  });

  it('one decomposition serves every rank: factorsAtRank equals factorizeLowRank, sensitivityOf equals sensitivityCurve', () => {
    const d = decomposeWhitened(W, n, k, { method: 'svdllm', stats });
    expect(d.svd.r).toBe(n);
    for (const r of [3, 11]) {
      const a = factorsAtRank(d, r, 'sqrt');
      const b = factorizeLowRank(W, n, k, { method: 'svdllm', rank: r, stats, split: 'sqrt' });
      expect(Array.from(a.u)).toEqual(Array.from(b.u));
      expect(Array.from(a.v)).toEqual(Array.from(b.v));
    }
    expect(Array.from(sensitivityOf(d, W, G).err)).toEqual(Array.from(sensitivityCurve(W, n, k, G, { method: 'svdllm', stats }).err));
  });

  it('typed errors for missing statistics and bad ranks', () => {
    expect(() => factorizeLowRank(W, n, k, { method: 'svdllm', rank: 3 })).toThrow(expect.objectContaining({ code: 'E_LOWRANK_STATS' }));
    expect(() => factorizeLowRank(W, n, k, { method: 'asvd', rank: 3 })).toThrow(expect.objectContaining({ code: 'E_LOWRANK_STATS' }));
    expect(() => factorizeLowRank(W, n, k, { method: 'plain', rank: 0 })).toThrow(expect.objectContaining({ code: 'E_LOWRANK_RANK' }));
    expect(() => createWhitening('svdllm', k, { xtx: new Float64Array(4) })).toThrow(expect.objectContaining({ code: 'E_LOWRANK_STATS' }));
  });
});

describe('sensitivityCurve', () => {
  it.each(['plain', 'asvd', 'svdllm'] as const)('%s: err[r] equals the brute-force output error of the rank-r factorization', (method) => {
    const c = sensitivityCurve(W, n, k, G, { method, stats });
    expect(c.err.length).toBe(n + 1);
    const energy = frob2(matmul64(X, transpose64(W, n, k), T, k, n));
    expect(Math.abs(c.energy - energy) / energy).toBeLessThan(1e-10);
    expect(Math.abs(c.err[0]! - energy) / energy).toBeLessThan(1e-9);
    expect(c.err[n]!).toBeLessThan(1e-9 * energy);
    for (let r = 1; r <= n; r++) expect(c.err[r]!).toBeLessThanOrEqual(c.err[r - 1]! * (1 + 1e-12));
    for (const r of [1, 5, 12, 20]) {
      const direct = directOutputError(factorizeLowRank(W, n, k, { method, rank: r, stats }));
      expect(Math.abs(c.err[r]! - direct) / direct).toBeLessThan(1e-5);
      expect(c.relative[r]).toBeCloseTo(c.err[r]! / c.energy, 12);
    }
  });

  it('svdllm is the lowest curve at every rank', () => {
    const curves = (['plain', 'asvd', 'svdllm'] as const).map((method) => sensitivityCurve(W, n, k, G, { method, stats }).err);
    for (let r = 1; r < n; r++) {
      expect(curves[2]![r]!).toBeLessThanOrEqual(curves[0]![r]! * (1 + 1e-9));
      expect(curves[2]![r]!).toBeLessThanOrEqual(curves[1]![r]! * (1 + 1e-9));
    }
  });
});

describe('MeanAbsAccumulator', () => {
  it('mean |x| per channel over all batches equals a direct float64 mean', () => {
    const acc = new MeanAbsAccumulator(k);
    acc.addBatch(X.subarray(0, 70 * k), 70);
    acc.addBatch(X.subarray(70 * k), T - 70);
    expect(acc.nsamples).toBe(T);
    const m = acc.mean();
    for (let j = 0; j < k; j++) {
      let s = 0;
      for (let r = 0; r < T; r++) s += Math.abs(X[r * k + j]!);
      expect(m[j]).toBeCloseTo(s / T, 12);
    }
    expect(Array.from(new MeanAbsAccumulator(3).mean())).toEqual([0, 0, 0]);
  });
});

describe('quantizeFactors', () => {
  const wide = Float32Array.from(randomMatrix(40, 256, 5), (v) => v * 0.05);
  const f = factorizeLowRank(wide, 40, 256, { method: 'plain', rank: 20, split: 'sqrt' });

  it('int8 per-channel factors: dequantized product close to U·V, per-factor error within the grid bound', () => {
    const q = quantizeFactors(f, { bits: 8, groupSize: -1, sym: true });
    expect(q.u.qtype).toBe('int8_pc_sym');
    expect([q.u.n, q.u.k, q.v.n, q.v.k]).toEqual([40, 20, 20, 256]);
    const d = dequantizeFactors(q);
    const uv = expandFactors(f);
    expect(Math.sqrt(frob2(expandFactors(d), uv) / frob2(uv))).toBeLessThan(0.02);
    // each code is within half a step of its value: |u − û| ≤ scale/2 per row
    for (let i = 0; i < 40; i++) for (let c = 0; c < 20; c++) {
      expect(Math.abs(d.u[i * 20 + c]! - f.u[i * 20 + c]!)).toBeLessThanOrEqual(q.u.scales[i]! * 0.5 * (1 + 1e-6));
    }
  });

  it('int4 g128: V (k = 256) is grouped, U (r = 20) falls back to per channel or throws E_GROUP_SIZE', () => {
    const grid = { bits: 4, groupSize: 128, sym: false } as const;
    const q = quantizeFactors(f, grid, { fallback: true });
    expect(q.v.qtype).toBe('int4_g128_asym');
    expect(q.u.qtype).toBe('int4_pc_asym');
    const d = dequantizeFactors(q);
    const uv = expandFactors(f);
    const rel = Math.sqrt(frob2(expandFactors(d), uv) / frob2(uv));
    expect(rel).toBeGreaterThan(0.01); // 4-bit does lose something
    expect(rel).toBeLessThan(0.3);
    expect(() => quantizeFactors(f, grid)).toThrow(expect.objectContaining({ code: 'E_GROUP_SIZE' }));
  });
});
