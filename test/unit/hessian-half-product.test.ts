/**
 * HessianAccumulator's half product (each band forms only P[i0:i1, 0:i1], relying on P = XᵀX being exactly
 * symmetric in fp32) against the full product (every column, ½(P[i, j] + P[j, i]) from both triangles):
 * the same H bit for bit, on both backends, at widths and batch lengths that cross the GEMM kernel's
 * K-blocking (t > 384) and its panel edges (k not a multiple of 8), with two threads.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MatmulBackend } from '../../src/kernels/backend.js';
import { createScalarBackend } from '../../src/kernels/scalar-backend.js';
import { createWasmBackend } from '../../src/kernels/wasm-backend.js';
import { HessianAccumulator } from '../../src/quantizers/hessian.js';

let wasmBackend: MatmulBackend;
beforeAll(async () => {
  wasmBackend = await createWasmBackend({ threads: 2 });
});
afterAll(async () => {
  await wasmBackend.dispose();
});

/** Seeded inputs with a few large-magnitude channels (as real activations have), xorshift32. */
function inputs(rows: number, k: number, seed: number): Float32Array {
  let s = seed >>> 0 || 1;
  const out = new Float32Array(rows * k);
  for (let i = 0; i < out.length; i++) {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    const u = s / 2 ** 32 - 0.5;
    out[i] = (i % k) % 37 === 0 ? 40 * u : u;
  }
  return out;
}

function differing(a: Float64Array, b: Float64Array): number {
  let bad = 0;
  for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i])) bad++;
  return bad;
}

describe('HessianAccumulator half product = full product', () => {
  const cases: Array<{ k: number; batches: number[]; bandRows?: number }> = [
    { k: 517, batches: [400, 3, 129], bandRows: 40 },
    { k: 600, batches: [512, 512] },
    { k: 64, batches: [7, 390], bandRows: 16 },
  ];
  for (const c of cases) {
    it(`k ${c.k}, batches ${c.batches.join('+')}, bandRows ${c.bandRows ?? 'default'}`, () => {
      const total = c.batches.reduce((s, t) => s + t, 0);
      const x = inputs(total, c.k, c.k);
      for (const backend of [wasmBackend, createScalarBackend()]) {
        if (backend.name === 'scalar' && c.k * c.k * total > 2e8) continue; // the oracle is slow
        const half = new HessianAccumulator(c.k, { backend, bandRows: c.bandRows });
        const full = new HessianAccumulator(c.k, { backend, bandRows: c.bandRows, product: 'full' });
        let r0 = 0;
        for (const t of c.batches) {
          half.addBatch(x.subarray(r0 * c.k, (r0 + t) * c.k), t);
          full.addBatch(x.subarray(r0 * c.k, (r0 + t) * c.k), t);
          r0 += t;
        }
        expect(`${backend.name}: ${differing(half.H, full.H)} differ`).toBe(`${backend.name}: 0 differ`);
      }
    });
  }
});
