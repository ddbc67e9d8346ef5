import { describe, expect, it } from 'vitest';
import { NonFiniteWeightError, UnsupportedError, UsageError } from '../../src/core/errors.js';
import { dequantize, fallbackGrid, listQTypes } from '../../src/qtypes/registry.js';
import type { GridSpec } from '../../src/qtypes/types.js';
import { importanceWeightedError, quantizeRtn } from '../../src/quantizers/rtn.js';

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
function gaussian(rand: () => number): number {
  return Math.sqrt(-2 * Math.log(rand() + 1e-12)) * Math.cos(2 * Math.PI * rand());
}

// ---- an independent scalar transcription of GPTQ quant.py (find_params + quantize), plus edgeq's one
// ---- deliberate deviation: the scale is rounded up to fp16 before the zero point and codes are derived.

/** torch.round: half to even. */
function torchRound(x: number): number {
  const f = Math.floor(x);
  const d = x - f;
  if (d < 0.5) return f;
  if (d > 0.5) return f + 1;
  return f % 2 === 0 ? f : f + 1;
}
/** Smallest fp16 ≥ x > 0, by exponent arithmetic (no bit tricks). */
function fp16Up(x: number): number {
  const e = Math.max(Math.floor(Math.log2(x)), -14);
  const ulp = 2 ** (e - 10);
  return Math.ceil(x / ulp) * ulp;
}
function quantPy(w: Float32Array, n: number, k: number, grid: GridSpec): { codes: number[]; scales: number[]; zeros: number[] } {
  const maxq = 2 ** grid.bits - 1;
  const g = grid.groupSize === -1 ? k : grid.groupSize;
  const codes: number[] = [];
  const scales: number[] = [];
  const zeros: number[] = [];
  for (let r = 0; r < n; r++) {
    for (let c0 = 0; c0 < k; c0 += g) {
      const x = Array.from(w.subarray(r * k + c0, r * k + c0 + g));
      let xmin = Math.min(Math.min(...x), 0);
      let xmax = Math.max(Math.max(...x), 0);
      if (grid.sym) {
        xmax = Math.max(Math.abs(xmin), xmax);
        if (xmin < 0) xmin = -xmax;
      }
      if (xmin === 0 && xmax === 0) {
        xmin = -1;
        xmax = 1;
      }
      const scale = fp16Up((xmax - xmin) / maxq);
      const zero = grid.sym ? (maxq + 1) / 2 : torchRound(-xmin / scale);
      scales.push(scale);
      zeros.push(zero);
      for (const v of x) codes.push(Math.min(Math.max(torchRound(v / scale) + zero, 0), maxq));
    }
  }
  return { codes, scales, zeros };
}

describe('plain RTN', () => {
  it.each(listQTypes().map((t) => [t.id, t.grid] as const))('%s matches the quant.py transcription code for code', (_id, grid) => {
    const n = 12;
    const k = 256;
    const rand = prng(grid.bits * 7 + grid.groupSize);
    // every group has a negative weight (quant.py's sym grid differs on all-non-negative groups, see below)
    const w = Float32Array.from({ length: n * k }, (_, i) => (i % 32 === 3 ? -0.5 : gaussian(rand) * (1 + (i % 5))));
    w.fill(0, 5 * k, 6 * k); // an all-zero row
    const q = quantizeRtn(w, n, k, grid);
    const ref = quantPy(w, n, k, grid);
    expect(Array.from(q.scales)).toEqual(ref.scales);
    expect(Array.from(q.zeros)).toEqual(ref.zeros);
    expect(Array.from(q.codes)).toEqual(ref.codes);
  });

  it('sym grids use max|w| on all-positive groups (quant.py would leave xmin = 0 and clip at ~max/2)', () => {
    const w = Float32Array.from({ length: 32 }, (_, i) => 0.01 + i / 31);
    const grid: GridSpec = { bits: 4, groupSize: 32, sym: true };
    const wq = dequantize(quantizeRtn(w, 1, 32, grid));
    for (let i = 0; i < 32; i++) expect(Math.abs(w[i]! - wq[i]!)).toBeLessThanOrEqual((1.01 * 2) / 15 / 2);
  });

  it('refuses NaN weights, bad importance and ungroupable k with typed errors', () => {
    const grid: GridSpec = { bits: 4, groupSize: 32, sym: false };
    const w = new Float32Array(64);
    w[40] = NaN;
    expect(() => quantizeRtn(w, 1, 64, grid, { name: 'x.weight' })).toThrow(NonFiniteWeightError);
    expect(() => quantizeRtn(new Float32Array(64), 1, 64, grid, { importance: new Float32Array(3) })).toThrow(UsageError);
    expect(() => quantizeRtn(new Float32Array(64), 1, 64, grid, { importance: new Float32Array(64).fill(-1) })).toThrow(UsageError);
    expect(() => quantizeRtn(new Float32Array(172 * 2), 2, 172, grid, { name: 'down_proj' })).toThrow(UnsupportedError);
    const q = quantizeRtn(Float32Array.from({ length: 344 }, (_, i) => Math.sin(i)), 2, 172, fallbackGrid(grid, 172));
    expect(q.numGroups).toBe(1);
    expect(q.qtype).toBe('int4_pc_asym');
  });
});

describe('importance-weighted RTN', () => {
  /** W with a few large-magnitude weights on unimportant channels, importance with a few hot channels. */
  function outlierCase(n: number, k: number, seed: number): { w: Float32Array; imp: Float32Array } {
    const rand = prng(seed);
    const w = Float32Array.from({ length: n * k }, () => gaussian(rand) * 0.02);
    const imp = Float32Array.from({ length: k }, () => 0.5 + rand());
    for (let c = 0; c < k; c++) {
      if (c % 29 === 7) imp[c] = 50 + 50 * rand(); // hot activation channels
      if (c % 41 === 11) {
        imp[c] = 0.01; // cold channel carrying weight outliers
        for (let r = 0; r < n; r++) w[r * k + c] = (rand() < 0.5 ? -1 : 1) * (0.1 + 0.1 * rand());
      }
    }
    return { w, imp };
  }

  it.each(listQTypes().map((t) => [t.id, t.grid] as const))('%s: weighted error ≤ plain RTN in every row, lower overall', (_id, grid) => {
    const n = 16;
    const k = 512;
    const { w, imp } = outlierCase(n, k, 3 + grid.bits);
    const plain = dequantize(quantizeRtn(w, n, k, grid));
    const weighted = dequantize(quantizeRtn(w, n, k, grid, { importance: imp }));
    for (let r = 0; r < n; r++) {
      const row = (m: Float32Array): number => importanceWeightedError(w.subarray(r * k, (r + 1) * k), m.subarray(r * k, (r + 1) * k), imp, 1, k);
      expect(row(weighted)).toBeLessThanOrEqual(row(plain));
    }
    const ep = importanceWeightedError(w, plain, imp, n, k);
    const ew = importanceWeightedError(w, weighted, imp, n, k);
    expect(ew).toBeLessThan(ep);
    if (grid.bits <= 4) expect(ew).toBeLessThan(0.8 * ep);
  });

  it('zero importance everywhere gives plain RTN', () => {
    const grid: GridSpec = { bits: 3, groupSize: 64, sym: false };
    const { w } = outlierCase(4, 256, 1);
    const a = quantizeRtn(w, 4, 256, grid);
    const b = quantizeRtn(w, 4, 256, grid, { importance: new Float32Array(256) });
    expect(b.codes).toEqual(a.codes);
    expect(b.scales).toEqual(a.scales);
  });

  it('scales stay fp16-representable and codes in range', () => {
    const grid: GridSpec = { bits: 2, groupSize: 32, sym: true };
    const { w, imp } = outlierCase(8, 256, 9);
    const q = quantizeRtn(w, 8, 256, grid, { importance: imp });
    for (const s of q.scales) expect(Math.fround(s) === s && s > 0).toBe(true);
    for (const c of q.codes) expect(c).toBeLessThanOrEqual(3);
    for (const z of q.zeros) expect(z).toBe(2);
  });
});
