import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MatmulBackend } from '../../src/kernels/backend.js';
import { createScalarBackend } from '../../src/kernels/scalar-backend.js';
import { createWasmBackend } from '../../src/kernels/wasm-backend.js';
import { QuantizedLinear } from '../../src/infer/quantized-linear.js';
import { dequantize } from '../../src/qtypes/registry.js';
import { gaussian, makeQuantWeight, prng } from './lowbit-weights.js';

let wasm: MatmulBackend;
beforeAll(async () => {
  wasm = await createWasmBackend({ threads: 2, spinMicros: 0 });
});
afterAll(async () => {
  await wasm?.dispose();
});

describe('QuantizedLinear', () => {
  it('matches the backend product plus bias, reports packed bytes, frees its handle', () => {
    const q = makeQuantWeight({ bits: 4, groupSize: 64, sym: false, actOrder: false, n: 40, k: 128, seed: 11 });
    const bias = gaussian(prng(1), 40);
    const x = gaussian(prng(2), 3 * 128);
    for (const be of [createScalarBackend(), wasm]) {
      const lin = new QuantizedLinear(be, q, bias);
      expect(lin.outFeatures).toBe(40);
      expect(lin.inFeatures).toBe(128);
      expect(lin.kernel).toBe('lut');
      // 2 LUT tiles of 32 rows, each: 4 planes × 128 cols × 4 B (16 B per 4 columns × 32 rows) + 2 blocks × 128 B (scales, zero terms)
      expect(lin.weightBytes).toBe(2 * (4 * 128 * 4 + 2 * 128));
      const y = lin.forward(x, 3);
      const h = be.prepareQuantized(q);
      const ref = be.matmulQuantized(x, 3, h);
      for (let i = 0; i < 3; i++) for (let r = 0; r < 40; r++) expect(y[i * 40 + r]).toBeCloseTo(ref[i * 40 + r]! + bias[r]!, 5);
      lin.free();
      expect(() => lin.forward(x, 3)).toThrow(/already freed/);
    }
  });

  it('int8 kernel on request; result close to the dequantized dense layer', () => {
    const q = makeQuantWeight({ bits: 3, groupSize: 32, sym: true, actOrder: true, n: 16, k: 96, seed: 12 });
    const lin = new QuantizedLinear(wasm, q, null, { kernel: 'int8' });
    expect(lin.kernel).toBe('int8');
    const x = gaussian(prng(3), 96);
    const y = lin.forward(x, 1);
    const wd = dequantize(q);
    for (let r = 0; r < 16; r++) {
      let s = 0;
      let a = 0;
      for (let c = 0; c < 96; c++) {
        s += wd[r * 96 + c]! * x[c]!;
        a += Math.abs(wd[r * 96 + c]! * x[c]!);
      }
      // int8 activations: error ≤ Σ|ŵ|·max|x|/254 per block, ≪ 5% of Σ|ŵ·x| for Gaussian x
      expect(Math.abs(y[r]! - s)).toBeLessThan(0.05 * a);
    }
    lin.free();
  });

  it('rejects a bias of the wrong length', () => {
    const q = makeQuantWeight({ bits: 2, groupSize: 32, sym: false, actOrder: false, n: 8, k: 32, seed: 13 });
    expect(() => new QuantizedLinear(wasm, q, new Float32Array(7))).toThrow(/bias has 7 values/);
  });
});

describe('low-bit weights in a bounded wasm memory', () => {
  it('says which weight does not fit, how big it is and what is in use', async () => {
    const { WasmHeap } = await import('../../src/kernels/wasm-memory.js');
    const { LowbitRunner } = await import('../../src/kernels/wasm-lowbit.js');
    const { wasm: api } = await import('../../src/kernels/wasm-api.js');
    const memory = new api.Memory({ initial: 1, maximum: 4, shared: true });
    const heap = new WasmHeap(memory, 64, 4 * 65536); // 256 KiB limit
    const runner = new LowbitRunner({ heap, threads: 1, counter: heap.alloc(64), fnBase: 4, run: () => {}, parts: () => 1 });
    const small = makeQuantWeight({ bits: 4, groupSize: 128, sym: false, actOrder: false, n: 64, k: 256, seed: 1 });
    runner.prepare(small, undefined, {}); // 2 tiles × (4·256·4 + 2·128) bytes: fits
    const big = makeQuantWeight({ bits: 4, groupSize: 128, sym: false, actOrder: false, n: 512, k: 2048, seed: 2 });
    let err: unknown;
    try {
      runner.prepare(big, undefined, {});
    } catch (e) {
      err = e;
    }
    expect(err).toMatchObject({ code: 'E_WASM_OOM' });
    expect(String((err as Error).message)).toMatch(/512×2048 int4_g128_asym weight \(0\.5 MiB packed for the lut kernel\).*in use, limit 0\.3 MiB/);
  });
});
