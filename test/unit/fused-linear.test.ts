/**
 * Same-input linears packed as one weight (src/infer/fused-linear.ts): the row concatenation dequantizes to
 * the members' rows; a fused group's outputs are bit-identical to the separate QuantizedLinears (decode,
 * short and prefill-sized batches, bias, 1 and 2 threads, LUT and int8 kernels); weights that differ in type
 * or column map are not fused; a quantized model loaded with and without fusion gives bit-identical logits
 * and the fused one really runs its q/k/v and gate/up groups as one weight.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { canFuseQuantized, concatQuantizedRows, FusedQuantizedLinear } from '../../src/infer/fused-linear.js';
import { QuantizedLinear } from '../../src/infer/quantized-linear.js';
import type { MatmulBackend } from '../../src/kernels/backend.js';
import { createWasmBackend } from '../../src/kernels/wasm-backend.js';
import { loadModel } from '../../src/model/load-model.js';
import { readModelConfig } from '../../src/model/model-dir.js';
import { quantizeModel } from '../../src/pipeline/quantize-model.js';
import { dequantize } from '../../src/qtypes/registry.js';
import { FIXTURE_MODELS } from '../helpers/fixtures.js';
import { gaussian, makeQuantWeight, prng } from './lowbit-weights.js';

type Backend = MatmulBackend & { dispose(): Promise<void> };
const backends: Backend[] = [];
let tmp: string;
let brownQ4: string;

async function backend(threads: number): Promise<Backend> {
  const b = (await createWasmBackend({ threads, spinMicros: 0 })) as Backend;
  backends.push(b);
  return b;
}

const bytes = (a: Float32Array): Buffer => Buffer.from(a.buffer, a.byteOffset, a.byteLength);

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'edgeq-fused-'));
  brownQ4 = path.join(tmp, 'brown-q4');
  const src = FIXTURE_MODELS.brownLlama7m;
  const { config } = readModelConfig(src);
  const b = await backend(1);
  await quantizeModel({ method: 'rtn', grid: { bits: 4, groupSize: 32, sym: true }, fallback: true, denseDtype: 'F32', calib: { samples: 1, seqLen: 16 }, modelDir: src, config, outDir: brownQ4, calibration: null, backend: b, edgeqVersion: 'test' });
}, 120_000);

afterAll(async () => {
  for (const b of backends) await b.dispose();
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

describe('concatQuantizedRows / canFuseQuantized', () => {
  it('the concatenation dequantizes to the members stacked by rows', () => {
    const qs = [40, 24, 24].map((n, i) => makeQuantWeight({ bits: 4, groupSize: 32, sym: false, actOrder: false, n, k: 96, seed: 10 + i }));
    const f = concatQuantizedRows(qs);
    expect([f.n, f.k]).toEqual([88, 96]);
    const want = new Float32Array(88 * 96);
    let o = 0;
    for (const q of qs) {
      want.set(dequantize(q), o);
      o += q.n * q.k;
    }
    expect(bytes(dequantize(f)).equals(bytes(want))).toBe(true);
  });

  it('refuses weights of another type, width or column map', () => {
    const base = { groupSize: 32, sym: true, actOrder: false, n: 32, k: 64 } as const;
    const a = makeQuantWeight({ ...base, bits: 4, seed: 1 });
    expect(canFuseQuantized([a, makeQuantWeight({ ...base, bits: 4, seed: 2 })])).toBe(true);
    expect(canFuseQuantized([a])).toBe(false);
    expect(canFuseQuantized([a, makeQuantWeight({ ...base, bits: 3, seed: 2 })])).toBe(false);
    expect(canFuseQuantized([a, makeQuantWeight({ ...base, bits: 4, k: 96, seed: 2 })])).toBe(false);
    const ao1 = makeQuantWeight({ ...base, bits: 4, actOrder: true, seed: 3 });
    const ao2 = makeQuantWeight({ ...base, bits: 4, actOrder: true, seed: 4 });
    expect(canFuseQuantized([ao1, { ...ao2, gIdx: ao1.gIdx }])).toBe(true);
    expect(canFuseQuantized([ao1, ao2])).toBe(false);
    expect(canFuseQuantized([a, ao1])).toBe(false);
    expect(() => concatQuantizedRows([a, ao1])).toThrow(/concatenated/);
  });
});

describe('FusedQuantizedLinear', () => {
  const cases = [
    { bits: 4, kernel: 'lut', threads: 1 },
    { bits: 4, kernel: 'lut', threads: 2 },
    { bits: 2, kernel: 'lut', threads: 2 },
    { bits: 4, kernel: 'int8', threads: 2 },
    { bits: 8, kernel: undefined, threads: 2 },
  ] as const;
  for (const c of cases)
    it(`${c.bits}-bit ${c.kernel ?? 'default'} kernel, ${c.threads} thread(s): outputs bit-identical to separate linears, m = 1, 3, 12`, async () => {
      const b = await backend(c.threads);
      const k = 128;
      const qs = [64, 32, 32].map((n, i) => makeQuantWeight({ bits: c.bits, groupSize: 32, sym: false, actOrder: false, n, k, seed: 100 + i }));
      const rand = prng(7);
      const biases = [gaussian(rand, 64), null, gaussian(rand, 32)];
      const fused = new FusedQuantizedLinear(b, qs, biases, { kernel: c.kernel });
      const sep = qs.map((q, i) => new QuantizedLinear(b, q, biases[i]!, { kernel: c.kernel }));
      for (const m of [1, 3, 12]) {
        const x = gaussian(rand, m * k);
        const outs = fused.forwardAll(x, m);
        outs.forEach((y, i) => expect(bytes(y).equals(bytes(sep[i]!.forward(x, m))), `member ${i}, m = ${m}`).toBe(true));
        // a member used on its own gives its share of the group's output
        expect(bytes(fused.members[2]!.forward(x, m)).equals(bytes(outs[2]!))).toBe(true);
      }
      expect(fused.members.reduce((s, l) => s + l.weightBytes, 0)).toBeGreaterThan(0);
      for (const l of fused.members) l.free(); // frees the one weight once
      for (const l of sep) l.free();
    });
});

describe('a quantized model with and without fusion', () => {
  it('gives bit-identical logits (prefill of 20 tokens, then decode) and fuses q/k/v and gate/up', async () => {
    const b = await backend(2);
    const fusedModel = await loadModel(brownQ4, b);
    const plainModel = await loadModel(brownQ4, b, { fuse: false });
    try {
      const blocks = (m: typeof fusedModel) => (m as unknown as { weights: { blocks: { groups?: { qkv?: unknown; gateUp?: unknown } }[] } }).weights.blocks;
      expect(blocks(fusedModel).every((bl) => bl.groups?.qkv && bl.groups?.gateUp)).toBe(true);
      expect(blocks(plainModel).some((bl) => bl.groups?.qkv || bl.groups?.gateUp)).toBe(false);
      expect(Math.abs(fusedModel.weightBytesPerToken() - plainModel.weightBytesPerToken())).toBeLessThan(64 * 6);
      const ids = Array.from({ length: 20 }, (_, i) => 1 + ((i * 37) % 4000));
      const run = (m: typeof fusedModel): Float32Array[] => {
        const cache = m.createCache(64);
        const out = [Float32Array.from(m.forward(ids, cache, 'all')!)];
        for (const t of [5, 99, 1234]) out.push(Float32Array.from(m.forward([t], cache, 'last')!));
        return out;
      };
      const a = run(fusedModel);
      const p = run(plainModel);
      a.forEach((y, i) => expect(bytes(y).equals(bytes(p[i]!)), `step ${i}`).toBe(true));
    } finally {
      fusedModel.dispose();
      plainModel.dispose();
    }
  }, 60_000);
});
