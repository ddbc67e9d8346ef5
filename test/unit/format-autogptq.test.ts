/**
 * GPTQ v1 packing checked against transcriptions of upstream loaders (test/helpers/upstream-unpack.ts:
 * AutoGPTQ QuantLinear.forward's torch path and GPTQModel's checkpoint dequantizer), never against
 * edgeq's own inverse. No transformers/AutoGPTQ install is possible here, so the layout is verified
 * structurally through those transcriptions.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UnsupportedError } from '../../src/core/errors.js';
import type { TensorPlanEntry } from '../../src/formats/edgeq/plan.js';
import { packGptqV1 } from '../../src/formats/gptq/pack.js';
import { GptqCheckpointWriter } from '../../src/formats/gptq/writer.js';
import { SafetensorsFile } from '../../src/formats/safetensors/reader.js';
import type { QuantizedWeight } from '../../src/qtypes/types.js';
import {
  autogptqDequantize,
  expectedDequantKN,
  gm_convert_gptq,
  randomQuantized,
  type I32Tensor,
  type RandomQOptions,
} from '../helpers/upstream-unpack.js';

let tmp: string;
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'edgeq-gptq-'));
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const t2 = (data: Int32Array, shape: [number, number]): I32Tensor => ({ data, shape });

/** Pack, then dequantize with both upstream transcriptions and compare everything bit-exactly. */
function checkAgainstUpstream(q: QuantizedWeight): void {
  const p = packGptqV1(q);
  const { n: N, k: K, numGroups: G } = q;
  const bits = q.grid.bits;
  expect(p.shapes).toEqual({ qweight: [(K * bits) / 32, N], qzeros: [G, (N * bits) / 32], scales: [G, N], g_idx: [K] });
  expect(p.qweight.length).toBe((K * bits * N) / 32);
  expect(p.qzeros.length).toBe((G * N * bits) / 32);
  const expectedG = q.gIdx ?? Int32Array.from({ length: K }, (_, c) => Math.floor(c / q.groupSize));
  expect(Array.from(p.g_idx)).toEqual(Array.from(expectedG));

  const codesKN = new Int32Array(K * N);
  for (let r = 0; r < N; r++) for (let c = 0; c < K; c++) codesKN[c * N + r] = q.codes[r * K + c]!;
  const zerosGN = new Int32Array(G * N);
  for (let r = 0; r < N; r++) for (let g = 0; g < G; g++) zerosGN[g * N + r] = q.zeros[r * G + g]!;
  const want = expectedDequantKN(q);

  for (const dq of [
    autogptqDequantize(t2(p.qweight, p.shapes.qweight), t2(p.qzeros, p.shapes.qzeros), p.scales, p.g_idx, bits),
    gm_convert_gptq(t2(p.qweight, p.shapes.qweight), t2(p.qzeros, p.shapes.qzeros), p.scales, p.g_idx, bits),
  ]) {
    expect(dq.iweight).toEqual(codesKN);
    expect(dq.izeros).toEqual(zerosGN);
    expect(dq.weight).toEqual(want);
  }
}

const gptq = (o: Omit<RandomQOptions, 'minZero'>): QuantizedWeight => randomQuantized({ ...o, minZero: 1 });

describe('packGptqV1 vs upstream dequantization', () => {
  const cases: Array<Omit<RandomQOptions, 'seed' | 'minZero'>> = [];
  for (const bits of [2, 3, 4, 8] as const) {
    for (const sym of [true, false]) {
      cases.push({ n: 64, k: 128, bits, groupSize: 32, sym });
      cases.push({ n: 32, k: 96, bits, groupSize: 32, sym, actOrder: true });
      cases.push({ n: 32, k: 64, bits, groupSize: -1, sym }); // per channel: one group
    }
  }
  it.each(cases.map((c, i) => ({ ...c, seed: 100 + i })))('bits=$bits sym=$sym g=$groupSize act=$actOrder', (c) => {
    checkAgainstUpstream(gptq(c));
  });

  it('edge shapes: K = one group, the narrowest N per bit width, a ragged last group', () => {
    checkAgainstUpstream(gptq({ n: 16, k: 32, bits: 2, groupSize: 32, sym: false, seed: 1 }));
    checkAgainstUpstream(gptq({ n: 32, k: 32, bits: 3, groupSize: 32, sym: false, seed: 2 }));
    checkAgainstUpstream(gptq({ n: 8, k: 32, bits: 4, groupSize: 32, sym: false, seed: 3 }));
    checkAgainstUpstream(gptq({ n: 4, k: 4, bits: 8, groupSize: 4, sym: true, seed: 4 }));
    checkAgainstUpstream(gptq({ n: 8, k: 48, bits: 4, groupSize: 32, sym: false, seed: 5 })); // G = ceil(48/32) = 2
    checkAgainstUpstream(gptq({ n: 8, k: 48, bits: 4, groupSize: 32, sym: true, actOrder: true, seed: 6 }));
  });

  it('stores zero − 1: symmetric zeros become 0x55555555 / 3-bit 3s / 0x77777777 / 0x7f7f7f7f words', () => {
    const words = (bits: 2 | 4 | 8) => Array.from(new Set(packGptqV1(gptq({ n: 32, k: 32, bits, groupSize: 32, sym: true, seed: 9 })).qzeros));
    expect(words(2)).toEqual([0x55555555]);
    expect(words(4)).toEqual([0x77777777]);
    expect(words(8)).toEqual([0x7f7f7f7f]);
    const q3 = packGptqV1(gptq({ n: 32, k: 32, bits: 3, groupSize: 32, sym: true, seed: 9 }));
    // 32 fields of value 3 (0b011) in the 3-word scheme
    expect(Array.from(q3.qzeros).map((w) => w >>> 0)).toEqual([0xdb6db6db, 0xb6db6db6, 0x6db6db6d]);
  });

  it('packs 4-bit codes along K, low nibble first', () => {
    const q = gptq({ n: 8, k: 8, bits: 4, groupSize: -1, sym: true, seed: 1 });
    q.codes.set([1, 2, 3, 4, 5, 6, 7, 8], 0); // row (output) 0
    expect(packGptqV1(q).qweight[0]! >>> 0).toBe(0x87654321);
  });

  it('re-expresses a zero point of 0 losslessly when the group never uses the top code', () => {
    const q = gptq({ n: 8, k: 64, bits: 4, groupSize: 32, sym: false, seed: 21 });
    q.zeros[3 * 2 + 1] = 0; // row 3, group 1
    for (let c = 32; c < 64; c++) q.codes[3 * 64 + c] = Math.min(q.codes[3 * 64 + c]!, 14);
    const p = packGptqV1(q);
    const dq = autogptqDequantize(t2(p.qweight, p.shapes.qweight), t2(p.qzeros, p.shapes.qzeros), p.scales, p.g_idx, 4);
    expect(dq.weight).toEqual(expectedDequantKN(q));
    expect(dq.izeros[1 * 8 + 3]).toBe(1);
    expect(q.zeros[3 * 2 + 1]).toBe(0); // the caller's weight is not modified
  });

  it('refuses a zero point of 0 it cannot re-express, and shapes the layout cannot hold', () => {
    const q = gptq({ n: 8, k: 32, bits: 4, groupSize: 32, sym: false, seed: 22 });
    q.zeros[0] = 0;
    q.codes[5] = 15;
    expect(() => packGptqV1(q)).toThrowError(expect.objectContaining({ code: 'E_GPTQ_ZERO_POINT' }));
    expect(() => packGptqV1(gptq({ n: 32, k: 48, bits: 3, groupSize: 16, sym: true, seed: 1 }))).toThrow(UnsupportedError);
    expect(() => packGptqV1(gptq({ n: 4, k: 32, bits: 4, groupSize: 32, sym: true, seed: 1 }))).toThrowError(/divisible by 8/);
  });
});

describe('GptqCheckpointWriter', () => {
  const H = 64;
  const I = 96;
  const srcConfig = { architectures: ['LlamaForCausalLM'], model_type: 'llama', hidden_size: H, intermediate_size: I, torch_dtype: 'bfloat16' };
  const linears: Array<[string, number, number]> = [
    ['self_attn.q_proj', H, H],
    ['self_attn.k_proj', 32, H],
    ['self_attn.v_proj', 32, H],
    ['self_attn.o_proj', H, H],
    ['mlp.gate_proj', I, H],
    ['mlp.up_proj', I, H],
    ['mlp.down_proj', H, I],
  ];
  function plan(actOrder: boolean, denseDown = false): TensorPlanEntry[] {
    const p: TensorPlanEntry[] = [{ kind: 'dense', name: 'model.embed_tokens.weight', shape: [16, H] }];
    p.push({ kind: 'dense', name: 'model.layers.0.input_layernorm.weight', shape: [H] });
    for (const [m, n, k] of linears) {
      const name = `model.layers.0.${m}.weight`;
      if (denseDown && m === 'mlp.down_proj') p.push({ kind: 'dense', name, shape: [n, k] });
      else p.push({ kind: 'quantized', name, shape: [n, k], qtype: 'int4_g32_asym', grid: { bits: 4, groupSize: 32, sym: false }, actOrder });
    }
    p.push({ kind: 'dense', name: 'model.norm.weight', shape: [H] }, { kind: 'dense', name: 'lm_head.weight', shape: [16, H] });
    return p;
  }

  it('writes a loadable layout: tensors, config.json and quantize_config.json', async () => {
    const src = path.join(tmp, 'src');
    fs.mkdirSync(src, { recursive: true });
    fs.writeFileSync(path.join(src, 'config.json'), JSON.stringify(srcConfig));
    fs.writeFileSync(path.join(src, 'tokenizer.json'), '{"model":{}}');
    const out = path.join(tmp, 'gptq-out');
    const p = plan(true);
    const w = await GptqCheckpointWriter.create(out, { plan: p, sourceDir: src, meta: { damp_percent: 0.01, true_sequential: true } });
    const qs = new Map<string, QuantizedWeight>();
    let seed = 500;
    for (const e of p) {
      if (e.kind === 'dense') await w.writeDense(e.name, new Float32Array(e.shape.reduce((a, b) => a * b, 1)).map((_, i) => i / 8 - 3));
      else {
        const q = gptq({ n: e.shape[0], k: e.shape[1], bits: 4, groupSize: 32, sym: false, actOrder: true, seed: seed++ });
        qs.set(e.name, q);
        await w.writeQuantized(e.name, q);
      }
    }
    await w.finish();
    expect(fs.readdirSync(out).sort()).toEqual(['config.json', 'model.safetensors', 'quantize_config.json', 'tokenizer.json']);
    expect(fs.readdirSync(tmp).filter((f) => f.startsWith('.'))).toEqual([]);

    const cfg = JSON.parse(fs.readFileSync(path.join(out, 'config.json'), 'utf8'));
    const qc = JSON.parse(fs.readFileSync(path.join(out, 'quantize_config.json'), 'utf8'));
    expect(cfg.quantization_config).toEqual(qc);
    expect(cfg.torch_dtype).toBe('float16');
    expect(cfg.model_type).toBe('llama');
    expect(qc).toMatchObject({ bits: 4, group_size: 32, desc_act: true, sym: false, lm_head: false, quant_method: 'gptq', checkpoint_format: 'gptq', pack_dtype: 'int32' });
    expect(qc.meta).toMatchObject({ damp_percent: 0.01, true_sequential: true });
    expect(qc.meta.quantizer[0]).toMatch(/^edgeq:/);

    const f = await SafetensorsFile.open(path.join(out, 'model.safetensors'));
    try {
      expect(f.metadata['format']).toBe('pt');
      expect(f.info('model.embed_tokens.weight').dtype).toBe('F16');
      expect(f.has('model.layers.0.mlp.up_proj.weight')).toBe(false);
      for (const [name, q] of qs) {
        const pre = name.slice(0, -'.weight'.length);
        const read = async (s: string) => {
          const raw = await f.readRaw(`${pre}.${s}`);
          return new Int32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength));
        };
        expect(f.info(`${pre}.qweight`)).toMatchObject({ dtype: 'I32', shape: [q.k / 8, q.n] });
        expect(f.info(`${pre}.qzeros`)).toMatchObject({ dtype: 'I32', shape: [q.numGroups, q.n / 8] });
        expect(f.info(`${pre}.scales`)).toMatchObject({ dtype: 'F16', shape: [q.numGroups, q.n] });
        expect(f.info(`${pre}.g_idx`)).toMatchObject({ dtype: 'I32', shape: [q.k] });
        const sr = await f.readRaw(`${pre}.scales`);
        const scales = new Uint16Array(sr.buffer.slice(sr.byteOffset, sr.byteOffset + sr.byteLength));
        const dq = autogptqDequantize(t2(await read('qweight'), [q.k / 8, q.n]), t2(await read('qzeros'), [q.numGroups, q.n / 8]), scales, await read('g_idx'), 4);
        expect(dq.weight).toEqual(expectedDequantKN(q));
      }
    } finally {
      await f.close();
    }
  });

  it('refuses plans GPTQ cannot describe (mixed grids, dense block linears) before writing anything', async () => {
    const out = path.join(tmp, 'gptq-refused');
    const mixed = plan(false);
    const e = mixed.find((x) => x.kind === 'quantized')!;
    if (e.kind === 'quantized') e.grid = { bits: 8, groupSize: 32, sym: false };
    await expect(GptqCheckpointWriter.create(out, { plan: mixed, sourceConfig: srcConfig })).rejects.toThrowError(
      expect.objectContaining({ code: 'E_GPTQ_MIXED' }),
    );
    await expect(GptqCheckpointWriter.create(out, { plan: plan(false, true), sourceConfig: srcConfig })).rejects.toThrowError(
      expect.objectContaining({ code: 'E_GPTQ_DENSE_LINEAR' }),
    );
    expect(fs.existsSync(out)).toBe(false);
  });
});
