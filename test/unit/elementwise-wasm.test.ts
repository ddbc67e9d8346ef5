// The WASM element-wise ops against their TypeScript references (src/infer/ops.ts).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MatmulBackend } from '../../src/kernels/backend.js';
import { createWasmBackend } from '../../src/kernels/wasm-backend.js';
import { siluMulInPlace } from '../../src/infer/ops.js';
import { gaussian, prng } from './lowbit-weights.js';

let wasm: MatmulBackend;
beforeAll(async () => {
  wasm = await createWasmBackend({ threads: 1 });
});
afterAll(async () => {
  await wasm.dispose();
});

describe('siluMul (wasm SIMD exp) vs siluMulInPlace (Math.exp)', () => {
  it('agrees to float32 rounding over a wide range, with a scalar tail (n not a multiple of 4)', () => {
    const rnd = prng(3);
    const n = 4099;
    const g = gaussian(rnd, n, 6);
    const special = [0, -0, 1e-8, -1e-8, 20, -20, 87, -87, 88.5, -88.5, 100, -100, 0.3466, -0.3466, 1e4, -1e4];
    g.set(special, 0);
    g.set(special.slice(0, 3), n - 3); // tail
    const u = gaussian(rnd, n, 1);
    const want = g.slice();
    siluMulInPlace(want, u);
    const got = g.slice();
    wasm.siluMul!(got, u);
    let worst = 0;
    for (let i = 0; i < n; i++) {
      const err = Math.abs(got[i]! - want[i]!);
      expect(Number.isFinite(got[i]!)).toBe(true);
      worst = Math.max(worst, err / Math.max(Math.abs(want[i]!), 1e-20)); // e^x is clamped at |x| ≈ 88: results below 1e-20 differ only in how close to 0 they are
    }
    expect(worst).toBeLessThan(1e-6);
  });

  it('a one-ulp-level wrong exponential would be caught: e^x at x = 1 to 1e-6', () => {
    const g = new Float32Array([-1, -2, -3, 1.5]);
    const u = new Float32Array([1, 1, 1, 1]);
    wasm.siluMul!(g, u);
    const silu = (x: number): number => x / (1 + Math.exp(-x));
    expect(g[0]).toBeCloseTo(silu(-1), 6);
    expect(g[1]).toBeCloseTo(silu(-2), 6);
    expect(g[2]).toBeCloseTo(silu(-3), 6);
    expect(g[3]).toBeCloseTo(silu(1.5), 6);
  });

  it('refuses an up array shorter than gate', () => {
    expect(() => wasm.siluMul!(new Float32Array(8), new Float32Array(4))).toThrow(/up has 4 values/);
  });
});
