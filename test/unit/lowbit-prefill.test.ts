/**
 * The prefill GEMM (assembly/lowbit-prefill.ts): WASM vs its scalar oracle prefillMatmulRef (tight: the
 * integer part Σ xq·code is exact, only the float epilogue's rounding differs), and vs "dequantize, then
 * fp32 matmul" within the int8 activation rounding bound: |x − xq·t| ≤ t/2 with t = max|x|/127 per block,
 * so |y − ŷ| ≤ Σ_c |ŵ_c| · t_block(c) / 2 (widened by 1 % plus 1e-5 of Σ|ŵ·x| for fp32 rounding).
 * Both packed layouts (LUT bit planes for 2/3/4-bit, int8 codes/nibbles), every group size, act-order,
 * n not a multiple of the 32-row tile, 1 and 2 threads bit-identical.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MatmulBackend } from '../../src/kernels/backend.js';
import { lowbitMatmulRef, prefillMatmulRef, q8ActsRef } from '../../src/kernels/lowbit-oracle.js';
import { blockLength, gatherActivations, makePlan, type LowbitKernel, type LowbitPlan } from '../../src/kernels/lowbit-plan.js';
import { createWasmBackend } from '../../src/kernels/wasm-backend.js';
import { DEFAULT_PREFILL_POLICY, setPrefillPolicy } from '../../src/kernels/wasm-lowbit.js';
import { dequantize } from '../../src/qtypes/registry.js';
import type { Bits } from '../../src/qtypes/types.js';
import { gaussian, makeQuantWeight, prng } from './lowbit-weights.js';

let wasm1: MatmulBackend;
let wasm2: MatmulBackend;

beforeAll(async () => {
  wasm1 = await createWasmBackend({ threads: 1 });
  wasm2 = await createWasmBackend({ threads: 2, spinMicros: 0 });
});
afterAll(async () => {
  setPrefillPolicy(DEFAULT_PREFILL_POLICY);
  await wasm1?.dispose();
  await wasm2?.dispose();
});

/** Dense float64 reference from the dequantized weight, Σ|ŵ·x|, and the int8 activation rounding bound. */
function denseAndBound(plan: LowbitPlan, wd: Float32Array, x: Float32Array, m: number) {
  const { n, k, kPad, numBlocks, blockLen, perm } = plan;
  const xs = new Float32Array(m * kPad);
  gatherActivations(plan, x, m, xs);
  const y = new Float64Array(m * n);
  const mag = new Float64Array(m * n);
  const bound = new Float64Array(m * n);
  for (let i = 0; i < m; i++) {
    const { scale } = q8ActsRef(plan, xs, i * kPad);
    for (let r = 0; r < n; r++) {
      let s = 0;
      let a = 0;
      for (let c = 0; c < k; c++) {
        const p = x[i * k + c]! * wd[r * k + c]!;
        s += p;
        a += Math.abs(p);
      }
      let e = 0;
      for (let b = 0; b < numBlocks; b++) {
        for (let p = b * blockLen; p < Math.min(b * blockLen + blockLength(plan, b), k); p++) {
          e += (Math.abs(wd[r * k + (perm ? perm[p]! : p)]!) * scale[b]!) / 2;
        }
      }
      y[i * n + r] = s;
      mag[i * n + r] = a;
      bound[i * n + r] = e;
    }
  }
  return { y, mag, bound };
}

interface Case {
  bits: Bits;
  groupSize: number;
  actOrder: boolean;
  kernel: LowbitKernel;
}
const cases: Case[] = [];
for (const bits of [2, 3, 4, 8] as Bits[]) {
  for (const groupSize of [32, 64, 128, -1]) {
    for (const actOrder of groupSize === -1 ? [false] : [false, true]) {
      for (const kernel of (bits <= 4 ? ['lut', 'int8'] : ['int8']) as LowbitKernel[]) cases.push({ bits, groupSize, actOrder, kernel });
    }
  }
}

describe('prefill GEMM: WASM vs prefillMatmulRef vs dequantize-then-fp32', () => {
  it.each(cases)('$kernel layout, $bits-bit g$groupSize actOrder=$actOrder', (c) => {
    setPrefillPolicy({ minTokens: 1, lutMinBits: 2, maxBits: 8 });
    const k = c.groupSize === -1 ? 172 : 384; // per-channel: k padded to 192
    const n = 45; // LUT layout: 2 tiles, the second 13 rows; int8 layout: 12 tiles of 4 = 1.5 prefill tiles
    const seed = c.bits * 1000 + (c.groupSize + 1) * 10 + (c.actOrder ? 5 : 0) + (c.kernel === 'lut' ? 1 : 0);
    const sym = (c.bits + c.groupSize) % 2 === 0; // both zero-point kinds over the grid
    const q = makeQuantWeight({ bits: c.bits, groupSize: c.groupSize, sym, actOrder: c.actOrder, n, k, seed });
    const wd = dequantize(q);
    const plan = makePlan(q, c.kernel);
    const h1 = wasm1.prepareQuantized(q, { kernel: c.kernel });
    const h2 = wasm2.prepareQuantized(q, { kernel: c.kernel });
    for (const m of [2, 5, 16, 33, 64]) {
      const x = gaussian(prng(seed + m), m * k);
      const oracle = new Float32Array(m * n);
      const omag = new Float64Array(m * n);
      prefillMatmulRef(q, plan, x, m, oracle, omag);
      const dense = denseAndBound(plan, wd, x, m);
      const y1 = wasm1.matmulQuantized(x, m, h1);
      const y2 = wasm2.matmulQuantized(x, m, h2);
      expect(Array.from(y2)).toEqual(Array.from(y1));
      for (let j = 0; j < m * n; j++) {
        const tight = 1e-6 * (plan.numBlocks + 8) * omag[j]! + 1e-30;
        const errO = Math.abs(y1[j]! - oracle[j]!);
        if (!(errO <= tight)) throw new Error(`m=${m}: y[${j}]=${y1[j]} oracle ${oracle[j]} (|err| ${errO} > ${tight})`);
        const loose = 1.01 * dense.bound[j]! + 1e-5 * dense.mag[j]! + 1e-30;
        const errD = Math.abs(y1[j]! - dense.y[j]!);
        if (!(errD <= loose)) throw new Error(`m=${m}: y[${j}]=${y1[j]} dequantized fp32 ${dense.y[j]} (|err| ${errD} > bound ${loose})`);
      }
    }
    wasm1.freeWeight(h1);
    wasm2.freeWeight(h2);
  });
});

describe('prefill GEMM: several passes over K', () => {
  it('m = 70 tokens at k = 8192 runs in passes of ≤ 64 tokens, same result', () => {
    setPrefillPolicy({ minTokens: 1, lutMinBits: 2, maxBits: 8 });
    for (const kernel of ['lut', 'int8'] as const) {
      const q = makeQuantWeight({ bits: 3, groupSize: 128, sym: false, actOrder: true, n: 40, k: 8192, seed: 31 });
      const plan = makePlan(q, kernel);
      const m = 70;
      const x = gaussian(prng(70), m * 8192);
      const oracle = new Float32Array(m * 40);
      const omag = new Float64Array(m * 40);
      prefillMatmulRef(q, plan, x, m, oracle, omag);
      const y1 = wasm1.matmulQuantized(x, m, wasm1.prepareQuantized(q, { kernel }));
      const y2 = wasm2.matmulQuantized(x, m, wasm2.prepareQuantized(q, { kernel }));
      expect(Array.from(y2)).toEqual(Array.from(y1));
      for (let j = 0; j < m * 40; j++) expect(Math.abs(y1[j]! - oracle[j]!)).toBeLessThanOrEqual(1e-6 * (plan.numBlocks + 8) * omag[j]! + 1e-30);
    }
  });
});

describe('prefill GEMM: dispatch', () => {
  it('m below the threshold runs the handle kernel, m at or above it the prefill GEMM', () => {
    setPrefillPolicy(DEFAULT_PREFILL_POLICY);
    const DEFAULT_PREFILL_MIN_TOKENS = DEFAULT_PREFILL_POLICY.minTokens;
    const q = makeQuantWeight({ bits: 4, groupSize: 32, sym: true, actOrder: false, n: 70, k: 256, seed: 4 });
    const plan = makePlan(q, 'lut');
    const h = wasm2.prepareQuantized(q);
    for (const m of [1, DEFAULT_PREFILL_MIN_TOKENS - 1, DEFAULT_PREFILL_MIN_TOKENS, 40]) {
      const x = gaussian(prng(m), m * 256);
      const lutRef = lowbitMatmulRef(q, plan, x, m, new Float32Array(m * 70));
      const preRef = prefillMatmulRef(q, plan, x, m, new Float32Array(m * 70));
      const want = m >= DEFAULT_PREFILL_MIN_TOKENS ? preRef : lutRef;
      const other = m >= DEFAULT_PREFILL_MIN_TOKENS ? lutRef : preRef;
      const y = wasm2.matmulQuantized(x, m, h);
      let dWant = 0;
      let dOther = 0;
      for (let j = 0; j < m * 70; j++) {
        dWant = Math.max(dWant, Math.abs(y[j]! - want[j]!));
        dOther = Math.max(dOther, Math.abs(y[j]! - other[j]!));
      }
      expect(dWant).toBeLessThan(1e-4);
      expect(dOther).toBeGreaterThan(10 * dWant);
    }
    wasm2.freeWeight(h);
  });

  it('by default 2/3-bit LUT-layout and 8-bit weights keep their kernel at any m, ≤ 4-bit int8-layout ones do not', () => {
    setPrefillPolicy(DEFAULT_PREFILL_POLICY);
    const m = 40;
    for (const bits of [2, 3, 8] as Bits[]) {
      const q = makeQuantWeight({ bits, groupSize: 64, sym: false, actOrder: false, n: 50, k: 256, seed: 40 + bits });
      const x = gaussian(prng(bits), m * 256);
      for (const kernel of (bits === 8 ? ['int8'] : ['lut', 'int8']) as LowbitKernel[]) {
        const plan = makePlan(q, kernel);
        const own = kernel === 'lut' || bits === 8;
        const ref = own ? lowbitMatmulRef(q, plan, x, m, new Float32Array(m * 50)) : prefillMatmulRef(q, plan, x, m, new Float32Array(m * 50));
        const y = wasm1.matmulQuantized(x, m, wasm1.prepareQuantized(q, { kernel }));
        for (let j = 0; j < y.length; j++) expect(Math.abs(y[j]! - ref[j]!)).toBeLessThan(1e-4);
      }
    }
    expect(() => setPrefillPolicy({ lutMinBits: 1 })).toThrow(/≥ 2/);
    expect(() => setPrefillPolicy({ minTokens: 0 })).toThrow(/≥ 1/);
  });

  it('zero activations give exactly zero; minTokens Infinity turns the prefill GEMM off', () => {
    const q = makeQuantWeight({ bits: 2, groupSize: 64, sym: false, actOrder: false, n: 33, k: 128, seed: 9 });
    setPrefillPolicy({ minTokens: 1, lutMinBits: 2, maxBits: 8 });
    for (const kernel of ['lut', 'int8'] as const) {
      const y = wasm2.matmulQuantized(new Float32Array(9 * 128), 9, wasm2.prepareQuantized(q, { kernel }));
      expect(Array.from(y).every((v) => v === 0)).toBe(true);
    }
    setPrefillPolicy({ minTokens: Infinity });
    const plan = makePlan(q, 'lut');
    const x = gaussian(prng(3), 20 * 128);
    const y = wasm1.matmulQuantized(x, 20, wasm1.prepareQuantized(q));
    const ref = lowbitMatmulRef(q, plan, x, 20, new Float32Array(20 * 33));
    for (let j = 0; j < y.length; j++) expect(Math.abs(y[j]! - ref[j]!)).toBeLessThan(1e-4);
    setPrefillPolicy(DEFAULT_PREFILL_POLICY);
  });
});
