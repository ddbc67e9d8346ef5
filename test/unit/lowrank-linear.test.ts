import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LowRankLinear } from '../../src/infer/lowrank-linear.js';
import type { MatmulBackend } from '../../src/kernels/backend.js';
import { createScalarBackend } from '../../src/kernels/scalar-backend.js';
import { createWasmBackend } from '../../src/kernels/wasm-backend.js';
import { dequantizeFactors, quantizeFactors } from '../../src/lowrank/factor-quant.js';
import { factorizeLowRank } from '../../src/lowrank/whitened-svd.js';
import { matmul64, randomMatrix, transpose64 } from './lowrank-helpers.js';

/** y (m, n) = x·(U·V)ᵀ + b in float64, W = U·V formed first (independent of the two-step order). */
function reference(x: Float32Array, m: number, u: ArrayLike<number>, v: ArrayLike<number>, n: number, r: number, k: number, bias?: Float32Array): Float64Array {
  const w = matmul64(u, v, n, r, k);
  const y = matmul64(x, transpose64(w, n, k), m, k, n);
  if (bias) for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) y[i * n + j] += bias[j]!;
  return y;
}

function maxRelErr(y: Float32Array, ref: Float64Array): number {
  let scale = 0;
  let worst = 0;
  for (let i = 0; i < ref.length; i++) scale = Math.max(scale, Math.abs(ref[i]!));
  for (let i = 0; i < ref.length; i++) worst = Math.max(worst, Math.abs(y[i]! - ref[i]!));
  return worst / scale;
}

describe('LowRankLinear', () => {
  let wasm: MatmulBackend;
  const scalar = createScalarBackend();
  beforeAll(async () => {
    wasm = await createWasmBackend({ threads: 2 });
  });
  afterAll(async () => {
    await wasm?.dispose();
  });

  const n = 48;
  const k = 64;
  const r = 12;
  const u = Float32Array.from(randomMatrix(n, r, 1));
  const v = Float32Array.from(randomMatrix(r, k, 2));
  const bias = Float32Array.from(randomMatrix(1, n, 3));

  it.each([1, 5, 33])('dense factors: forward equals x·(U·V)ᵀ + b from a float64 reference (m = %i), scalar and wasm', (m) => {
    const x = Float32Array.from(randomMatrix(m, k, 10 + m));
    for (const be of [scalar, wasm]) {
      for (const b of [null, bias]) {
        const lin = LowRankLinear.fromFactors(be, { n, k, r, u, v }, b);
        expect([lin.outFeatures, lin.inFeatures, lin.rank]).toEqual([n, k, r]);
        expect(lin.weightBytes).toBe((n + k) * r * 4);
        const y = lin.forward(x, m);
        expect(y.length).toBe(m * n);
        expect(maxRelErr(y, reference(x, m, u, v, n, r, k, b ?? undefined))).toBeLessThan(1e-5);
        // a caller-provided output buffer is filled and returned; repeated calls reuse the scratch
        const out = new Float32Array(m * n);
        expect(lin.forward(x, m, out)).toBe(out);
        expect(Array.from(out)).toEqual(Array.from(y));
        lin.free();
      }
    }
  });

  it('a factorized layer runs W ≈ U·V: full rank reproduces the dense layer', () => {
    const w = Float32Array.from(randomMatrix(20, 30, 4));
    const f = factorizeLowRank(w, 20, 30, { method: 'plain', rank: 20 });
    const x = Float32Array.from(randomMatrix(7, 30, 5));
    const lin = LowRankLinear.fromFactors(wasm, f);
    const dense = matmul64(x, transpose64(w, 20, 30), 7, 30, 20);
    expect(maxRelErr(lin.forward(x, 7), dense)).toBeLessThan(1e-5);
    lin.free();
  });

  it.each([
    ['int8 per channel', { bits: 8, groupSize: -1, sym: true }, 32],
    ['int4 g32', { bits: 4, groupSize: 32, sym: false }, 32],
    ['int4 per channel, rank 20 (padded K)', { bits: 4, groupSize: -1, sym: false }, 20],
  ] as const)('quantized factors (%s): equals x·(Û·V̂)ᵀ of the dequantized factors; bytes from the packed handles', (_n, grid, rq) => {
    const uq = Float32Array.from(randomMatrix(n, rq, 6));
    const vq = Float32Array.from(randomMatrix(rq, k, 7));
    const q = quantizeFactors({ n, k, r: rq, u: uq, v: vq }, grid);
    const d = dequantizeFactors(q);
    const x = Float32Array.from(randomMatrix(9, k, 8));
    for (const be of [scalar, wasm]) {
      const lin = LowRankLinear.fromQuantized(be, q, bias);
      const ref = reference(x, 9, d.u, d.v, n, rq, k, bias);
      const y = lin.forward(x, 9);
      // exactly the composition of the backend's own quantized products (then + b)
      const hv = be.prepareQuantized(q.v);
      const hu = be.prepareQuantized(q.u);
      const two = be.matmulQuantized(be.matmulQuantized(x, 9, hv), 9, hu);
      for (let i = 0; i < 9; i++) for (let j = 0; j < n; j++) expect(y[i * n + j]).toBe(Math.fround(two[i * n + j]! + bias[j]!));
      expect(lin.weightBytes).toBe(hu.bytes + hv.bytes);
      expect(lin.weightBytes).toBeLessThan((n + k) * rq * 4); // smaller than the fp32 factors
      be.freeWeight(hv);
      be.freeWeight(hu);
      // the low-bit kernels round the activation side per block: int8 activations (int8-dot, prefill GEMM) or LUT
      // tables of ±63 (lowbit-oracle.ts LUT_TABLE_MAX; the scalar backend runs the LUT arithmetic at every m): ~1–3 %
      // of the output scale through two products
      expect(maxRelErr(y, ref)).toBeLessThan(4e-2);
      lin.free();
    }
  });

  it('rejects mismatched shapes with E_MATMUL_SHAPE', () => {
    expect(() => LowRankLinear.fromFactors(scalar, { n, k, r, u: u.subarray(1), v })).toThrow(expect.objectContaining({ code: 'E_MATMUL_SHAPE' }));
    expect(() => LowRankLinear.fromFactors(scalar, { n, k, r, u, v }, new Float32Array(3))).toThrow(expect.objectContaining({ code: 'E_MATMUL_SHAPE' }));
    expect(() => LowRankLinear.fromFactors(scalar, { n, k, r: 0, u, v })).toThrow(expect.objectContaining({ code: 'E_MATMUL_SHAPE' }));
  });
});
