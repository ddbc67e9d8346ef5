import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EdgeqError, UsageError } from '../../src/core/errors.js';
import { packCodes, packedRowBytes, unpackCodes } from '../../src/formats/bitpack.js';
import { openAtomicDir } from '../../src/formats/edgeq/atomic-dir.js';
import type { EdgeqProvenance } from '../../src/formats/edgeq/metadata.js';
import type { TensorPlanEntry } from '../../src/formats/edgeq/plan.js';
import { EdgeqCheckpoint, isEdgeqCheckpoint } from '../../src/formats/edgeq/reader.js';
import { copyModelSideFiles } from '../../src/formats/edgeq/side-files.js';
import { EdgeqCheckpointWriter } from '../../src/formats/edgeq/writer.js';
import { SafetensorsFile } from '../../src/formats/safetensors/reader.js';
import type { QuantizedWeight } from '../../src/qtypes/types.js';
import { randomQuantized, seededRng, type RandomQOptions } from '../helpers/upstream-unpack.js';

let tmp: string;
let src: string;
const srcConfig = { architectures: ['LlamaForCausalLM'], model_type: 'llama', hidden_size: 64, torch_dtype: 'bfloat16' };
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'edgeq-fmt-'));
  src = path.join(tmp, 'src-model');
  fs.mkdirSync(src);
  fs.writeFileSync(path.join(src, 'config.json'), JSON.stringify(srcConfig));
  fs.writeFileSync(path.join(src, 'tokenizer.json'), '{"version":"1.0"}');
  fs.writeFileSync(path.join(src, 'tokenizer_config.json'), '{}');
  fs.writeFileSync(path.join(src, 'generation_config.json'), '{"do_sample":false}');
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** Entries of `dir` that are temp/old folders of an atomic write. */
const leftovers = (dir: string) => fs.readdirSync(dir).filter((f) => f.startsWith('.'));

const provenance: EdgeqProvenance = {
  method: 'gptq',
  bits: 4,
  groupSize: 32,
  calibration: { name: 'wikitext2', sha256: 'ab'.repeat(32), samples: 128, seqlen: 2048, seed: 0 },
  edgeqVersion: '0.1.0',
  layerErrors: {},
};

describe('bitpack', () => {
  it('round-trips random codes at 2/3/4/8 bits, odd widths included', () => {
    const rnd = seededRng(7);
    for (const bits of [2, 3, 4, 8] as const) {
      for (const cols of [1, 3, 5, 8, 13, 64]) {
        const rows = 3;
        const codes = new Uint8Array(rows * cols).map(() => Math.floor(rnd() * (1 << bits)));
        const packed = packCodes(codes, rows, cols, bits);
        expect(packed.length).toBe(rows * Math.ceil((cols * bits) / 8));
        expect(unpackCodes(packed, rows, cols, bits)).toEqual(codes);
      }
    }
  });

  it('is LSB-first with each row padded to whole bytes', () => {
    expect(Array.from(packCodes(Uint8Array.of(1, 2, 3), 1, 3, 4))).toEqual([0x21, 0x03]);
    expect(Array.from(packCodes(Uint8Array.of(1, 2, 3, 0), 1, 4, 2))).toEqual([0b00111001]);
    // 3 bits: 1 | 2<<3 | 3<<6 = 0xd1, then the top bit of 3 (0) and code 7 at bits 9..11
    expect(Array.from(packCodes(Uint8Array.of(1, 2, 3, 7), 1, 4, 3))).toEqual([0xd1, 0x0e]);
    expect(Array.from(packCodes(Uint8Array.of(5, 1, 7), 3, 1, 3))).toEqual([5, 1, 7]); // one byte per row
    expect(packedRowBytes(13, 3)).toBe(5);
    expect(() => packCodes(Uint8Array.of(16), 1, 1, 4)).toThrowError(expect.objectContaining({ code: 'E_CODE_RANGE' }));
  });
});

/** A plan mixing every grid plus dense F16/F32 tensors; returns the weights to write. */
function mixedModel(): { plan: TensorPlanEntry[]; qs: Map<string, QuantizedWeight>; dense: Map<string, Float32Array> } {
  const plan: TensorPlanEntry[] = [];
  const qs = new Map<string, QuantizedWeight>();
  const dense = new Map<string, Float32Array>();
  const rnd = seededRng(3);
  const addDense = (name: string, shape: number[], dtype: 'F16' | 'F32') => {
    const v = new Float32Array(shape.reduce((a, b) => a * b, 1)).map(() => (rnd() - 0.5) * 4);
    plan.push({ kind: 'dense', name, shape, dtype });
    dense.set(name, dtype === 'F16' ? Float32Array.from(v, (x) => Math.fround(x)) : v);
  };
  addDense('model.embed_tokens.weight', [10, 40], 'F32');
  let seed = 1;
  let i = 0;
  for (const bits of [2, 3, 4, 8] as const) {
    for (const sym of [false, true]) {
      for (const [groupSize, actOrder] of [[16, false], [-1, false], [16, true]] as const) {
        const o: RandomQOptions = { n: 6, k: 40, bits, groupSize, sym, actOrder, seed: seed++ }; // k = 40: ragged last group
        const q = randomQuantized(o);
        const name = `model.layers.${i++}.mlp.up_proj.weight`;
        plan.push({ kind: 'quantized', name, shape: [o.n, o.k], qtype: q.qtype, grid: q.grid, actOrder });
        qs.set(name, q);
      }
    }
  }
  addDense('model.norm.weight', [40], 'F16');
  return { plan, qs, dense };
}

async function writeModel(out: string, m: ReturnType<typeof mixedModel>, opts: { overwrite?: boolean; failAt?: string } = {}): Promise<void> {
  const w = await EdgeqCheckpointWriter.create(out, { plan: m.plan, sourceDir: src, overwrite: opts.overwrite === true });
  for (const e of m.plan) {
    if (e.name === opts.failAt) await w.writeDense(e.name, new Float32Array(3)); // an extra chunk: the real data then overflows the tensor
    if (e.kind === 'quantized') await w.writeQuantized(e.name, m.qs.get(e.name)!);
    else {
      const v = m.dense.get(e.name)!;
      const half = Math.floor(v.length / 2); // chunked writes
      await w.writeDense(e.name, v.subarray(0, half), e.dtype);
      await w.writeDense(e.name, v.subarray(half));
    }
  }
  const errs = Object.fromEntries([...m.qs.keys()].map((n, j) => [n, j / 100]));
  await w.finish({ provenance: { ...provenance, layerErrors: errs } });
}

describe('edgeq checkpoint', () => {
  it('round-trips every grid (2/3/4/8 bits, sym/asym, grouped, per-channel, act-order), dense tensors and metadata', async () => {
    const out = path.join(tmp, 'roundtrip');
    const m = mixedModel();
    await writeModel(out, m);
    expect(fs.readdirSync(out).sort()).toEqual(['config.json', 'generation_config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json']);
    expect(leftovers(tmp)).toEqual([]);
    expect(await isEdgeqCheckpoint(out)).toBe(true);
    expect(await isEdgeqCheckpoint(src)).toBe(false);

    const ck = await EdgeqCheckpoint.open(out);
    try {
      expect(ck.config['model_type']).toBe('llama');
      expect(ck.config['quantization_config']).toMatchObject({ quant_method: 'edgeq', format_version: 1, method: 'gptq' });
      expect(ck.provenance).toEqual({ ...provenance, layerErrors: Object.fromEntries([...m.qs.keys()].map((n, j) => [n, j / 100])) });
      for (const [name, q] of m.qs) {
        expect(ck.isQuantized(name)).toBe(true);
        expect(ck.qtypes.get(name)).toEqual({
          qtype: q.qtype, bits: q.grid.bits, groupSize: q.grid.groupSize, sym: q.grid.sym, n: q.n, k: q.k, actOrder: q.gIdx !== null,
        });
        expect(await ck.readQuantized(name)).toEqual(q);
      }
      for (const [name, v] of m.dense) {
        expect(ck.isQuantized(name)).toBe(false);
        const got = await ck.readDense(name);
        const e = m.plan.find((x) => x.name === name)!;
        if (e.kind === 'dense' && e.dtype === 'F32') expect(got).toEqual(v);
        else got.forEach((x, j) => expect(Math.abs(x - v[j]!)).toBeLessThanOrEqual(Math.abs(v[j]!) * 2 ** -11));
      }
      await expect(ck.readDense([...m.qs.keys()][0]!)).rejects.toThrowError(expect.objectContaining({ code: 'E_QUANTIZED' }));
    } finally {
      await ck.close();
    }
    const f = await SafetensorsFile.open(path.join(out, 'model.safetensors'));
    expect(f.info('model.layers.1.mlp.up_proj.qweight')).toMatchObject({ dtype: 'U8', shape: [6, 10] }); // 2-bit: ceil(40·2/8)
    expect(f.info('model.layers.7.mlp.up_proj.qweight')).toMatchObject({ dtype: 'U8', shape: [6, 15] }); // 3-bit: ceil(40·3/8)
    expect(f.has('model.layers.3.mlp.up_proj.qzeros')).toBe(false); // symmetric: zeros implied
    expect(f.info('model.layers.2.mlp.up_proj.g_idx')).toMatchObject({ dtype: 'I32', shape: [40] });
    expect(f.metadata['format']).toBe('pt');
    expect(f.metadata['edgeq.format_version']).toBe('1');
    await f.close();
  });

  it('writes a provenance larger than the reserved header (rewrites the file behind a bigger header)', async () => {
    const out = path.join(tmp, 'big-provenance');
    const m = mixedModel();
    const w = await EdgeqCheckpointWriter.create(out, { plan: m.plan, sourceConfig: srcConfig });
    for (const e of m.plan) {
      if (e.kind === 'quantized') await w.writeQuantized(e.name, m.qs.get(e.name)!);
      else await w.writeDense(e.name, m.dense.get(e.name)!);
    }
    const big = { ...provenance, notes: 'x'.repeat(300_000) };
    await w.finish({ provenance: big });
    expect(fs.readdirSync(out).sort()).toEqual(['config.json', 'model.safetensors']);
    const ck = await EdgeqCheckpoint.open(out);
    expect(ck.provenance).toEqual(big);
    for (const [name, q] of m.qs) expect(await ck.readQuantized(name)).toEqual(q);
    await ck.close();
  });

  it('rejects weights that do not match the plan, and needs provenance', async () => {
    const m = mixedModel();
    const out = path.join(tmp, 'mismatch');
    const w = await EdgeqCheckpointWriter.create(out, { plan: m.plan, sourceConfig: srcConfig });
    await w.writeDense('model.embed_tokens.weight', m.dense.get('model.embed_tokens.weight')!);
    const [name, q] = [...m.qs][0]!;
    await expect(w.writeQuantized(name, { ...q, scales: q.scales.map(() => 0.1) })).rejects.toThrowError(
      expect.objectContaining({ code: 'E_SCALE_NOT_F16' }),
    );
    expect(fs.existsSync(out)).toBe(false);
    expect(leftovers(tmp)).toEqual([]);
    const w2 = await EdgeqCheckpointWriter.create(out, { plan: m.plan, sourceConfig: srcConfig });
    await expect(w2.writeQuantized([...m.qs.keys()][1]!, m.qs.get([...m.qs.keys()][1]!)!)).rejects.toThrowError(
      expect.objectContaining({ code: 'E_WRITER_ORDER' }),
    );
    const w3 = await EdgeqCheckpointWriter.create(out, { plan: m.plan.slice(0, 1), sourceConfig: srcConfig });
    await w3.writeDense('model.embed_tokens.weight', m.dense.get('model.embed_tokens.weight')!);
    await expect(w3.finish()).rejects.toThrowError(expect.objectContaining({ code: 'E_PROVENANCE' }));
    expect(fs.existsSync(out)).toBe(false);
    expect(leftovers(tmp)).toEqual([]);
  });
});

describe('atomic output folder', () => {
  it('a writer that throws midway leaves neither the output folder nor a temp folder', async () => {
    const out = path.join(tmp, 'fails-midway');
    await expect(writeModel(out, mixedModel(), { failAt: 'model.norm.weight' })).rejects.toBeInstanceOf(EdgeqError);
    expect(fs.existsSync(out)).toBe(false);
    expect(leftovers(tmp)).toEqual([]);
  });

  it('refuses an existing non-empty folder without overwrite and leaves it untouched', async () => {
    const out = path.join(tmp, 'existing');
    fs.mkdirSync(out);
    fs.writeFileSync(path.join(out, 'keep.txt'), 'precious');
    const err = await writeModel(out, mixedModel()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UsageError);
    expect(err).toMatchObject({ code: 'E_OUTPUT_EXISTS' });
    expect((err as UsageError).hint).toMatch(/overwrite/);
    expect(fs.readdirSync(out)).toEqual(['keep.txt']);
    expect(leftovers(tmp)).toEqual([]);
  });

  it('with overwrite, a failure keeps the old folder; a success replaces it completely', async () => {
    const out = path.join(tmp, 'replace-me');
    fs.mkdirSync(out);
    fs.writeFileSync(path.join(out, 'keep.txt'), 'old model');
    await expect(writeModel(out, mixedModel(), { overwrite: true, failAt: 'model.norm.weight' })).rejects.toBeInstanceOf(EdgeqError);
    expect(fs.readdirSync(out)).toEqual(['keep.txt']);
    expect(fs.readFileSync(path.join(out, 'keep.txt'), 'utf8')).toBe('old model');
    await writeModel(out, mixedModel(), { overwrite: true });
    expect(fs.readdirSync(out)).not.toContain('keep.txt');
    expect(await isEdgeqCheckpoint(out)).toBe(true);
    expect(leftovers(tmp)).toEqual([]);
  });

  it('treats an empty folder as absent, refuses a file, and commits/aborts only once', async () => {
    const empty = path.join(tmp, 'empty-dir');
    fs.mkdirSync(empty);
    await writeModel(empty, mixedModel());
    expect(await isEdgeqCheckpoint(empty)).toBe(true);
    const file = path.join(tmp, 'a-file');
    fs.writeFileSync(file, 'x');
    await expect(openAtomicDir(file, { overwrite: true })).rejects.toMatchObject({ code: 'E_OUTPUT_EXISTS' });
    const d = await openAtomicDir(path.join(tmp, 'nested', 'deeper', 'out'));
    fs.writeFileSync(path.join(d.tempPath, 'f'), '1');
    await d.commit();
    await expect(d.commit()).rejects.toMatchObject({ code: 'E_WRITER_STATE' });
    await d.abort(); // no-op after commit
    expect(fs.readFileSync(path.join(tmp, 'nested', 'deeper', 'out', 'f'), 'utf8')).toBe('1');
  });
});

describe('copyModelSideFiles', () => {
  it('copies the tokenizer and generation files that exist', async () => {
    const out = path.join(tmp, 'side');
    fs.mkdirSync(out);
    expect(await copyModelSideFiles(src, out)).toEqual(['tokenizer.json', 'tokenizer_config.json', 'generation_config.json']);
    expect(fs.readFileSync(path.join(out, 'generation_config.json'), 'utf8')).toBe('{"do_sample":false}');
  });
});
