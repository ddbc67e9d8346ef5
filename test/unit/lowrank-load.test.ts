/**
 * Loading a mixed edgeq checkpoint (fp16, quantized on several grids, low-rank) into the runtime:
 *   - each linear gets the right class (DenseLinear / QuantizedLinear / LowRankLinear with the stored factor kinds);
 *   - per low-rank linear, the packed LowRankLinear and the dequantized-mode product (a DenseLinear) both match an
 *     independent float64 computation of x·(U·V)ᵀ from the factors the test wrote;
 *   - whole model: packed-mode logits match dequantized-mode logits.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BUNDLED } from '../../src/core/paths.js';
import type { MatmulBackend } from '../../src/kernels/backend.js';
import { createScalarBackend } from '../../src/kernels/scalar-backend.js';
import { createWasmBackend } from '../../src/kernels/wasm-backend.js';
import { DenseLinear } from '../../src/infer/linear.js';
import { LowRankLinear } from '../../src/infer/lowrank-linear.js';
import { QuantizedLinear } from '../../src/infer/quantized-linear.js';
import { loadModel } from '../../src/model/load-model.js';
import { lowRankProduct, lowRankProductOn } from '../../src/model/lowrank-product.js';
import { openWeightSource } from '../../src/model/weight-source.js';
import { factorF64, lowRankForward64, mixedWithLowRank, writeMixedCheckpoint, type WrittenCheckpoint } from './lowrank-checkpoint-fixture.js';

const STORIES = BUNDLED.models.stories260K!;
let tmp: string;
let dir: string;
let written: WrittenCheckpoint;
let wasm: MatmulBackend;

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'edgeq-lowrank-load-'));
  dir = path.join(tmp, 'mixed');
  written = await writeMixedCheckpoint(STORIES, dir, mixedWithLowRank);
  wasm = await createWasmBackend({ threads: 1 });
}, 120_000);
afterAll(async () => {
  await wasm?.dispose();
  fs.rmSync(tmp, { recursive: true, force: true });
});

function seededX(m: number, k: number, seed: number): Float32Array {
  let s = seed >>> 0;
  return Float32Array.from({ length: m * k }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return (s / 2 ** 32) * 2 - 1;
  });
}

/** max |a − b| / max |b|. */
function relMaxErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let d = 0;
  let ref = 0;
  for (let i = 0; i < b.length; i++) {
    d = Math.max(d, Math.abs(a[i]! - b[i]!));
    ref = Math.max(ref, Math.abs(b[i]!));
  }
  return d / ref;
}

describe('loading low-rank linears', () => {
  it('gives each linear the class its storage implies', async () => {
    const model = await loadModel(dir, wasm);
    try {
      const b0 = model.weights.blocks[0]!.linears;
      expect(b0.q_proj).toBeInstanceOf(QuantizedLinear);
      expect(b0.k_proj).toBeInstanceOf(QuantizedLinear);
      expect(b0.v_proj).toBeInstanceOf(DenseLinear);
      for (const role of ['o_proj', 'gate_proj', 'up_proj', 'down_proj'] as const) expect(b0[role], role).toBeInstanceOf(LowRankLinear);
      expect((b0.o_proj as LowRankLinear).factorKinds).toEqual({ u: 'quantized', v: 'quantized' });
      expect((b0.gate_proj as LowRankLinear).factorKinds).toEqual({ u: 'dense', v: 'dense' });
      expect((b0.up_proj as LowRankLinear).factorKinds).toEqual({ u: 'quantized', v: 'dense' });
      expect((b0.down_proj as LowRankLinear).rank).toBe(8);
      expect(model.weights.blocks[1]!.linears.o_proj).toBeInstanceOf(QuantizedLinear);
    } finally {
      model.dispose();
    }
    const deq = await loadModel(dir, wasm, { quantized: 'dequantized' });
    for (const l of Object.values(deq.weights.blocks[0]!.linears)) expect(l).toBeInstanceOf(DenseLinear);
    deq.dispose();
  });

  it('the dense product Û·V̂: scalar reference and backend fast path both match an independent float64 U·V', async () => {
    const src = await openWeightSource(dir);
    try {
      for (const [name, w] of written.lowRank) {
        const u = factorF64(w.u);
        const v = factorF64(w.v);
        const want = new Float64Array(w.n * w.k);
        for (let i = 0; i < w.n; i++) for (let j = 0; j < w.k; j++) {
          let s = 0;
          for (let a = 0; a < w.r; a++) s += u[i * w.r + a]! * v[a * w.k + j]!;
          want[i * w.k + j] = s;
        }
        const lr = (await src.readLowRank(name))!;
        expect(relMaxErr(lowRankProduct(lr), want), `${name} reference`).toBeLessThan(1e-6);
        expect(relMaxErr(await src.readF32(name), want), `${name} readF32`).toBeLessThan(1e-6);
        for (const be of [wasm, createScalarBackend()]) expect(relMaxErr(lowRankProductOn(be, lr), want), `${name} backend`).toBeLessThan(1e-5);
      }
    } finally {
      await src.close();
    }
  });

  for (const kind of ['scalar', 'wasm'] as const) {
    it(`${kind}: packed factors and the dequantized product both match float64 x·(U·V)ᵀ`, async () => {
      const be = kind === 'wasm' ? wasm : createScalarBackend();
      const src = await openWeightSource(dir);
      try {
        const m = 5;
        for (const [name, w] of written.lowRank) {
          const x = seededX(m, w.k, w.n * 31 + w.r);
          const want = lowRankForward64(w, x, m);
          const lr = (await src.readLowRank(name))!;
          const packed = LowRankLinear.fromParts(be, lr);
          const yp = packed.forward(x, m);
          packed.free();
          const dense = new DenseLinear(be, await src.readF32(name), w.n, w.k, null);
          const yd = dense.forward(x, m);
          dense.free();
          // the product path is fp32 arithmetic on the exact factors: fp32 rounding only
          expect(relMaxErr(yd, want), `${name} dequantized`).toBeLessThan(1e-5);
          // quantized factors run on low-bit kernels that quantize their activations (8-bit): a few 1e-3
          const quantizedFactor = !(w.u instanceof Float32Array) || !(w.v instanceof Float32Array);
          expect(relMaxErr(yp, want), `${name} packed`).toBeLessThan(quantizedFactor ? 2e-2 : 1e-5);
        }
      } finally {
        await src.close();
      }
    });
  }

  const ids = [1, 403, 262, 300, 17, 96, 283, 448, 79, 301, 12, 1, 55, 460, 33, 2];
  const logitsOf = async (d: string, quantized: 'packed' | 'dequantized') => {
    const model = await loadModel(d, wasm, { quantized });
    const logits = model.forward(ids, model.createCache(ids.length), 'all')!;
    model.dispose();
    return logits;
  };
  /** Mean over positions of KL(softmax(p) ‖ softmax(q)), and the count of positions with the same argmax. */
  const klAndTop1 = (p: Float32Array, q: Float32Array, vocab: number) => {
    let kl = 0;
    let same = 0;
    for (let t = 0; t < p.length / vocab; t++) {
      const lp = logSoftmax(p.subarray(t * vocab, (t + 1) * vocab));
      const lq = logSoftmax(q.subarray(t * vocab, (t + 1) * vocab));
      for (let i = 0; i < vocab; i++) kl += Math.exp(lp[i]!) * (lp[i]! - lq[i]!);
      if (lp.indexOf(Math.max(...lp)) === lq.indexOf(Math.max(...lq))) same++;
    }
    return { kl: kl / (p.length / vocab), same };
  };

  it('a low-rank model with fp16-stored factors: packed (two matmuls) and dequantized (U·V) logits agree to fp32 rounding', async () => {
    const d = path.join(tmp, 'lowrank-f16');
    await writeMixedCheckpoint(STORIES, d, (role, _l, n, k) => ({ kind: 'lowrank', rank: Math.min(n, k) - (role === 'down_proj' ? 7 : 3), uGrid: null, vGrid: null }));
    const packed = await logitsOf(d, 'packed');
    const deq = await logitsOf(d, 'dequantized');
    const err = relMaxErr(packed, deq);
    console.log(`low-rank (F16 factors) stories260K: packed vs dequantized logits, max |Δ| / max |logit| = ${err.toExponential(3)}`);
    expect(err).toBeLessThan(1e-4);
  });

  it('the mixed model: packed-mode logits match dequantized-mode logits (within the low-bit kernels\' activation rounding)', async () => {
    const packed = await logitsOf(dir, 'packed');
    const deq = await logitsOf(dir, 'dequantized');
    expect(packed.length).toBe(ids.length * 512);
    const err = relMaxErr(packed, deq);
    const { kl, same } = klAndTop1(deq, packed, 512);
    console.log(`mixed low-rank stories260K: packed vs dequantized logits, max |Δ| / max |logit| = ${err.toExponential(3)}, mean KL ${kl.toExponential(3)}, top-1 ${same}/${ids.length}`);
    expect(err).toBeLessThan(6e-2);
    // measured: 2.7e-3 here; the same grids without low-rank 7.5e-4, a plain Q4_0/int8 model 1.2e-3 (stories260K is tiny
    // and sensitive: this is the kernels' activation rounding, not the low-rank path, which is exact above)
    expect(kl).toBeLessThan(6e-3);
    expect(same).toBeGreaterThanOrEqual(ids.length - 1);
  });
});

function logSoftmax(x: Float32Array): Float64Array {
  let mx = -Infinity;
  for (const v of x) mx = Math.max(mx, v);
  let s = 0;
  for (const v of x) s += Math.exp(v - mx);
  const l = Math.log(s) + mx;
  return Float64Array.from(x, (v) => v - l);
}
