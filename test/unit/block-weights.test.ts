/**
 * Packing a weight onto a backend band by band (WeightWriter / prepareWeightFromReader) against the whole-matrix
 * prepareWeight, and PackedBlock against toBlockWeights of a fully read block: the same products, bit for bit.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LlamaConfig } from '../../src/arch/llama-config.js';
import { parseModelConfig } from '../../src/arch/registry.js';
import { LLAMA_LINEARS, linearWeightName, normName } from '../../src/arch/llama-tensors.js';
import { EdgeqError, NonFiniteWeightError } from '../../src/core/errors.js';
import { SafetensorsCheckpoint } from '../../src/formats/safetensors/checkpoint.js';
import { writeSafetensors, type TensorWithData } from '../../src/formats/safetensors/writer.js';
import type { MatmulBackend } from '../../src/kernels/backend.js';
import { createScalarBackend } from '../../src/kernels/scalar-backend.js';
import { createWasmBackend } from '../../src/kernels/wasm-backend.js';
import { freeBlockWeights, linearWeightF32, PackedBlock, prepareWeightFromReader, readBlockF32, toBlockWeights } from '../../src/pipeline/block-weights.js';

let dir: string;
let wasmBackend: MatmulBackend;
beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'edgeq-block-weights-'));
  wasmBackend = await createWasmBackend({ threads: 2 });
});
afterAll(async () => {
  await wasmBackend.dispose();
  fs.rmSync(dir, { recursive: true, force: true });
});

/** Seeded uniform values in [-1, 1) (xorshift32). */
function rand(len: number, seed: number): Float32Array {
  let s = seed >>> 0 || 1;
  const out = new Float32Array(len);
  for (let i = 0; i < len; i++) {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    out[i] = s / 2 ** 31 - 1;
  }
  return out;
}

const bits = (a: Float32Array): Uint32Array => new Uint32Array(a.buffer, a.byteOffset, a.length);

describe('WeightWriter (beginWeight) = prepareWeight', () => {
  for (const name of ['scalar', 'wasm'] as const) {
    it(`${name}: bands of every allowed size give the same products as the whole matrix`, () => {
      const backend = name === 'wasm' ? wasmBackend : createScalarBackend();
      for (const [n, k] of [
        [37, 19],
        [64, 48],
        [8, 5],
        [3, 7],
      ] as const) {
        const w = rand(n * k, n * 131 + k);
        const x = rand(6 * k, k);
        const ref = backend.matmul(x, 6, backend.prepareWeight(w, n, k));
        const wr = backend.beginWeight!(n, k);
        const a = wr.rowAlign;
        expect(a).toBeGreaterThanOrEqual(1);
        // bands of a, 2a, a, 3a, … rows, the last one short
        let step = 0;
        while (wr.rowsWritten < n) {
          const rows = Math.min(n - wr.rowsWritten, a * (1 + (step++ % 3)));
          wr.write(w.slice(wr.rowsWritten * k, (wr.rowsWritten + rows) * k), rows);
        }
        const h = wr.finish();
        expect([h.n, h.k]).toEqual([n, k]);
        expect(bits(backend.matmul(x, 6, h))).toEqual(bits(ref));
        backend.freeWeight(h);
      }
    });
  }

  for (const name of ['scalar', 'wasm'] as const) {
    it(`${name}: matmulPrefix(rows) = the first rows columns of matmul, for every rows`, () => {
      const backend = name === 'wasm' ? wasmBackend : createScalarBackend();
      const [n, k] = [45, 400]; // 6 panels of 8: one four and two singles in the GEMV; k past the K-block (384)
      const w = rand(n * k, 3);
      const h = backend.prepareWeight(w, n, k);
      for (const m of [1, 4, 11]) {
        const x = rand(m * k, m);
        const full = backend.matmul(x, m, h);
        for (let rows = 0; rows <= n; rows++) {
          const y = backend.matmulPrefix!(x, m, h, rows);
          const ref = new Float32Array(m * rows);
          for (let i = 0; i < m; i++) ref.set(full.subarray(i * n, i * n + rows), i * rows);
          expect(bits(y), `m ${m} rows ${rows}`).toEqual(bits(ref));
        }
      }
      expect(() => backend.matmulPrefix!(new Float32Array(k), 1, h, n + 1)).toThrow(EdgeqError);
      backend.freeWeight(h);
    });
  }

  for (const name of ['scalar', 'wasm'] as const) {
    it(`${name}: unpackWeight lends the storage; repackWeight of that very array packs in place (several staging chunks)`, () => {
      const backend = name === 'wasm' ? wasmBackend : createScalarBackend();
      const [n, k] = [1203, 2048]; // 4 MiB staging chunks of 512 rows: 3 chunks, the last panel partial
      const h = backend.prepareWeight(rand(n * k, 1), n, k);
      const lent = backend.unpackWeight!(h);
      expect(lent.length).toBe(n * k);
      expect(() => backend.matmul(new Float32Array(k), 1, h)).toThrow(EdgeqError);
      const values = rand(n * k, 2);
      lent.set(values);
      backend.repackWeight!(h, lent);
      const x = rand(6 * k, 3);
      const ref = backend.prepareWeight(values, n, k);
      expect(bits(backend.matmul(x, 6, h))).toEqual(bits(backend.matmul(x, 6, ref)));
      backend.freeWeight(h);
      backend.freeWeight(ref);
    });
  }

  it('wasm: refuses misaligned, overlong and incomplete writes; abort gives the space back', () => {
    const wr = wasmBackend.beginWeight!(20, 4);
    const a = wr.rowAlign;
    expect(a).toBeGreaterThan(1);
    expect(() => wr.write(new Float32Array(4), 1)).toThrow(EdgeqError); // not a multiple of rowAlign, not the last
    expect(() => wr.write(new Float32Array(4 * 21), 21)).toThrow(EdgeqError); // past n
    expect(() => wr.write(new Float32Array(4), a)).toThrow(EdgeqError); // band shorter than rows·k
    expect(() => wr.finish()).toThrow(EdgeqError); // 0 of 20 rows
    wr.abort();
    wr.abort();
    expect(() => wr.write(new Float32Array(4 * a), a)).toThrow(EdgeqError);
  });
});

// ---------------------------------------------------------------------------------------------------
// A tiny llama block in a safetensors file.

const CONFIG = {
  architectures: ['LlamaForCausalLM'],
  model_type: 'llama',
  hidden_size: 40,
  intermediate_size: 72,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  num_hidden_layers: 1,
  vocab_size: 32,
  rms_norm_eps: 1e-5,
  max_position_embeddings: 64,
  rope_theta: 10000,
  tie_word_embeddings: true,
};

async function writeBlock(file: string, c: LlamaConfig, poison?: { role: string; index: number }): Promise<void> {
  const tensors: TensorWithData[] = [];
  let seed = 7;
  for (const spec of LLAMA_LINEARS) {
    const [n, k] = spec.shape(c);
    const data = rand(n * k, seed++);
    if (poison?.role === spec.role) data[poison.index] = Number.NaN;
    tensors.push({ name: linearWeightName(0, spec), dtype: 'F32', shape: [n, k], data });
  }
  for (const which of ['input_layernorm', 'post_attention_layernorm'] as const) {
    tensors.push({ name: normName(0, which), dtype: 'F32', shape: [c.hiddenSize], data: rand(c.hiddenSize, seed++).map((v) => 1 + 0.1 * v) });
  }
  await writeSafetensors(file, tensors);
}

describe('prepareWeightFromReader and PackedBlock', () => {
  const c = parseModelConfig(CONFIG);

  it('every linear packed from the checkpoint by bands computes what the fully read weight computes', async () => {
    const file = path.join(dir, 'block.safetensors');
    await writeBlock(file, c);
    const ckpt = await SafetensorsCheckpoint.open(file);
    try {
      const full = await readBlockF32(ckpt, c, 0);
      for (const backend of [wasmBackend, createScalarBackend()]) {
        for (const spec of LLAMA_LINEARS) {
          const { n, k, w } = full.linears[spec.role];
          const x = rand(5 * k, k + 3);
          const ref = backend.matmul(x, 5, backend.prepareWeight(w, n, k));
          // a band of one aligned group of rows at a time, and the default size (one band here)
          for (const bandBytes of [1, 1 << 20]) {
            const h = await prepareWeightFromReader(backend, ckpt, linearWeightName(0, spec), n, k, bandBytes);
            expect(bits(backend.matmul(x, 5, h)), `${backend.name} ${spec.role} band ${bandBytes}`).toEqual(bits(ref));
            backend.freeWeight(h);
          }
        }
      }
      // the block without its weights, packed from the checkpoint = the fully read block's runnable weights
      const lean = await readBlockF32(ckpt, c, 0, { weights: false });
      const packed = await PackedBlock.create(wasmBackend, ckpt, lean);
      const ref = toBlockWeights(wasmBackend, full);
      try {
        for (const spec of LLAMA_LINEARS) {
          const { k } = full.linears[spec.role];
          const x = rand(7 * k, 99);
          expect(bits(packed.weights.linears[spec.role].forward(x, 7))).toEqual(bits(ref.linears[spec.role].forward(x, 7)));
        }
        // replace swaps in new values
        const { n, k } = full.linears.down_proj;
        const w2 = rand(n * k, 5);
        packed.replace('down_proj', w2);
        const x = rand(3 * k, 4);
        expect(bits(packed.weights.linears.down_proj.forward(x, 3))).toEqual(bits(wasmBackend.matmul(x, 3, wasmBackend.prepareWeight(w2, n, k))));
      } finally {
        packed.free();
        freeBlockWeights(ref);
      }
    } finally {
      await ckpt.close();
    }
  });

  for (const name of ['wasm', 'scalar'] as const) {
    it(`${name}: linearWeightF32 of a packed block reads into the packed copy's storage; replace packs it back in place`, async () => {
      const backend = name === 'wasm' ? wasmBackend : createScalarBackend();
      const file = path.join(dir, `solve-${name}.safetensors`);
      await writeBlock(file, c);
      const ckpt = await SafetensorsCheckpoint.open(file);
      try {
        const full = await readBlockF32(ckpt, c, 0);
        const lean = await readBlockF32(ckpt, c, 0, { weights: false });
        const packed = await PackedBlock.create(backend, ckpt, lean);
        try {
          for (const role of ['gate_proj', 'q_proj', 'down_proj'] as const) {
            const { n, k } = full.linears[role];
            const w = await linearWeightF32(ckpt, lean, role);
            expect(bits(w)).toEqual(bits(full.linears[role].w)); // the checkpoint's values
            expect(() => packed.weights.linears[role].forward(new Float32Array(k), 1)).toThrow(/being solved/);
            for (let i = 0; i < w.length; i++) w[i] = Math.fround(w[i]! * 0.5 - 0.125); // "solve" in place
            const expected = w.slice();
            packed.replace(role, w);
            const x = rand(9 * k, 11);
            const ref = backend.prepareWeight(expected, n, k);
            expect(bits(packed.weights.linears[role].forward(x, 9))).toEqual(bits(backend.matmul(x, 9, ref)));
            backend.freeWeight(ref);
          }
          // a solve that returns another array (e.g. a low-rank product) is packed into the same storage too
          const { n, k } = full.linears.up_proj;
          await linearWeightF32(ckpt, lean, 'up_proj');
          const other = rand(n * k, 77);
          packed.replace('up_proj', other);
          const x = rand(4 * k, 12);
          expect(bits(packed.weights.linears.up_proj.forward(x, 4))).toEqual(bits(backend.matmul(x, 4, backend.prepareWeight(other, n, k))));
        } finally {
          packed.free();
        }
        // once freed, the block is read from the checkpoint again (a fresh array)
        const again = await linearWeightF32(ckpt, lean, 'o_proj');
        expect(bits(again)).toEqual(bits(full.linears.o_proj.w));
      } finally {
        await ckpt.close();
      }
    });
  }

  it('a NaN in the checkpoint is refused naming the tensor and its index, and nothing stays allocated', async () => {
    const file = path.join(dir, 'poisoned.safetensors');
    const [, k] = LLAMA_LINEARS.find((s) => s.role === 'up_proj')!.shape(c);
    const index = 61 * k + 5;
    await writeBlock(file, c, { role: 'up_proj', index });
    const ckpt = await SafetensorsCheckpoint.open(file);
    try {
      const lean = await readBlockF32(ckpt, c, 0, { weights: false });
      const err = await PackedBlock.create(wasmBackend, ckpt, lean).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(NonFiniteWeightError);
      expect(String((err as Error).message)).toContain(linearWeightName(0, LLAMA_LINEARS.find((s) => s.role === 'up_proj')!));
      expect(String((err as Error).message)).toContain(String(index));
    } finally {
      await ckpt.close();
    }
  });
});
