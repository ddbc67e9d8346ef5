// The EDGEQ_DUMP_GPTQ hook (src/pipeline/linear-quantizer.ts) that scripts/gptq-reference/compare.py reads:
// W as the solver received it (even when the solve overwrites it), H as accumulated (even when the shared
// Hinv was formed in place in H's storage), and the result, as raw little-endian files + a JSON header.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createScalarBackend } from '../../src/kernels/scalar-backend.js';
import { createStats, HessianStats, quantizeLinear } from '../../src/pipeline/linear-quantizer.js';
import { HessianAccumulator } from '../../src/quantizers/hessian.js';
import type { GridSpec } from '../../src/qtypes/types.js';

function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32) * 2 - 1;
}

describe('EDGEQ_DUMP_GPTQ', () => {
  const saved = process.env.EDGEQ_DUMP_GPTQ;
  afterEach(() => {
    if (saved === undefined) delete process.env.EDGEQ_DUMP_GPTQ;
    else process.env.EDGEQ_DUMP_GPTQ = saved;
  });

  it('writes W, the undamped H and the result of every GPTQ linear sharing one in-place Hessian', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'edgeq-gptq-dump-'));
    process.env.EDGEQ_DUMP_GPTQ = dir;
    const k = 64;
    const n = 8;
    const T = 96;
    const rand = lcg(7);
    const x = Float32Array.from({ length: T * k }, rand);
    const backend = createScalarBackend();
    const stats = createStats('hessian', k, backend, new Float64Array(k * k)) as HessianStats; // H inverted in place
    stats.add(x, T);
    const ref = new HessianAccumulator(k, { backend }); // the same fp32 product as the stats
    ref.addBatch(x, T);
    const grid: GridSpec = { bits: 4, groupSize: 32, sym: false };
    for (const name of ['blk.q.weight', 'blk.k.weight']) {
      const w = Float32Array.from({ length: n * k }, rand);
      const w0 = w.slice();
      const res = quantizeLinear('gptq', w, n, k, grid, stats, { name, backend, inPlace: true });
      const read = (ext: string) => fs.readFileSync(path.join(dir, `${name}.${ext}`));
      const f32 = (ext: string) => { const b = read(ext); return new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4).slice(); };
      const hb = read('H.f64');
      expect(f32('W.f32')).toEqual(w0); // not the overwritten working copy
      expect(new Float64Array(hb.buffer, hb.byteOffset, hb.byteLength / 8).slice()).toEqual(ref.H); // not the Hinv
      expect(f32('Wq.f32')).toEqual(res.dequantized);
      expect(new Uint8Array(read('codes.u8'))).toEqual(res.q.codes);
      expect(f32('scales.f32')).toEqual(res.q.scales);
      expect(new Uint8Array(read('zeros.u8'))).toEqual(res.q.zeros);
      const meta = JSON.parse(read('json').toString());
      expect(meta).toMatchObject({ name, n, k, nsamples: T, bits: 4, groupSize: 32, sym: false, damp: 0.01, dampUsed: 0.01, actOrder: false, loss: res.loss });
    }
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('writes nothing when unset', () => {
    delete process.env.EDGEQ_DUMP_GPTQ;
    const k = 32;
    const rand = lcg(3);
    const backend = createScalarBackend();
    const stats = createStats('hessian', k, backend) as HessianStats;
    stats.add(Float32Array.from({ length: 40 * k }, rand), 40);
    quantizeLinear('gptq', Float32Array.from({ length: 4 * k }, rand), 4, k, { bits: 4, groupSize: 32, sym: false }, stats, { name: 'x', backend });
    expect(stats.dumpH).toBeNull();
  });
});
