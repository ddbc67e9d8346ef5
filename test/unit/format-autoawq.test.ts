/**
 * AutoAWQ GEMM packing checked against a transcription of AutoAWQ's own unpack/dequantize
 * (awq/utils/packing_utils.py, in test/helpers/upstream-unpack.ts), never against edgeq's inverse.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UnsupportedError } from '../../src/core/errors.js';
import { packAwqGemm } from '../../src/formats/awq/pack.js';
import { AwqCheckpointWriter } from '../../src/formats/awq/writer.js';
import type { TensorPlanEntry } from '../../src/formats/edgeq/plan.js';
import { SafetensorsFile } from '../../src/formats/safetensors/reader.js';
import type { QuantizedWeight } from '../../src/qtypes/types.js';
import { dequantize_gemm, expectedDequantKN, randomQuantized, type RandomQOptions } from '../helpers/upstream-unpack.js';

let tmp: string;
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'edgeq-awq-'));
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const awq = (o: Omit<RandomQOptions, 'bits'> & { bits?: 2 | 3 | 4 | 8 }): QuantizedWeight =>
  randomQuantized({ bits: 4, ...o });

function checkAgainstAutoAwq(q: QuantizedWeight): void {
  const p = packAwqGemm(q);
  const { n: N, k: K, numGroups: G } = q;
  expect(p.shapes).toEqual({ qweight: [K, N / 8], qzeros: [G, N / 8], scales: [G, N] });
  const dq = dequantize_gemm({ data: p.qweight, shape: p.shapes.qweight }, { data: p.qzeros, shape: p.shapes.qzeros }, p.scales, 4, q.groupSize);
  const codesKN = new Int32Array(K * N);
  for (let r = 0; r < N; r++) for (let c = 0; c < K; c++) codesKN[c * N + r] = q.codes[r * K + c]!;
  const zerosGN = new Int32Array(G * N);
  for (let r = 0; r < N; r++) for (let g = 0; g < G; g++) zerosGN[g * N + r] = q.zeros[r * G + g]!;
  expect(dq.iweight).toEqual(codesKN);
  expect(dq.izeros).toEqual(zerosGN); // stored as is: no −1
  expect(dq.weight).toEqual(expectedDequantKN(q));
}

describe('packAwqGemm vs AutoAWQ dequantize_gemm', () => {
  it.each([
    { n: 64, k: 256, groupSize: 128, sym: false, seed: 1 },
    { n: 48, k: 64, groupSize: 32, sym: false, seed: 2 },
    { n: 64, k: 128, groupSize: 64, sym: true, seed: 3 }, // symmetric: explicit zero points 8
    { n: 32, k: 96, groupSize: -1, sym: false, seed: 4 }, // per channel: one group of K
    { n: 8, k: 128, groupSize: 128, sym: false, seed: 5 }, // edge: N = 8 (one word), K = one group
    { n: 8, k: 16, groupSize: 16, sym: true, seed: 6 },
  ])('n=$n k=$k g=$groupSize sym=$sym', (c) => {
    checkAgainstAutoAwq(awq(c));
  });

  it('interleaves nibbles with ORDER = [0,2,4,6,1,3,5,7] in qweight and qzeros', () => {
    const q = awq({ n: 8, k: 32, groupSize: 32, sym: false, seed: 7 });
    for (let r = 0; r < 8; r++) {
      q.codes[r * 32] = r; // column k = 0 of output r holds r
      q.zeros[r] = 7 - r;
    }
    const p = packAwqGemm(q);
    // nibble i holds logical output ORDER[i]: values 0,2,4,6,1,3,5,7 from the low nibble up
    expect(p.qweight[0]! >>> 0).toBe(0x75316420);
    expect(p.qzeros[0]! >>> 0).toBe(0x02461357);
  });

  it('refuses what AWQ GEMM cannot hold', () => {
    const code = (q: QuantizedWeight) => {
      try {
        packAwqGemm(q);
      } catch (err) {
        expect(err).toBeInstanceOf(UnsupportedError);
        return (err as UnsupportedError).code;
      }
      return 'ok';
    };
    expect(code(awq({ n: 32, k: 64, bits: 3, groupSize: 32, sym: false, seed: 1 }))).toBe('E_AWQ_BITS');
    expect(code(awq({ n: 32, k: 64, bits: 8, groupSize: 32, sym: false, seed: 1 }))).toBe('E_AWQ_BITS');
    expect(code(awq({ n: 12, k: 64, groupSize: 32, sym: false, seed: 1 }))).toBe('E_AWQ_SHAPE');
    expect(code(awq({ n: 16, k: 48, groupSize: 32, sym: false, seed: 1 }))).toBe('E_AWQ_SHAPE');
    expect(code(awq({ n: 16, k: 64, groupSize: 32, sym: false, actOrder: true, seed: 1 }))).toBe('E_AWQ_ACT_ORDER');
  });
});

describe('AwqCheckpointWriter', () => {
  const H = 32;
  const srcConfig = { architectures: ['LlamaForCausalLM'], model_type: 'llama', hidden_size: H };
  const roles = ['self_attn.q_proj', 'self_attn.o_proj', 'mlp.down_proj'];
  function plan(layers: number, dense: (layer: number, role: string) => boolean): TensorPlanEntry[] {
    const p: TensorPlanEntry[] = [{ kind: 'dense', name: 'model.embed_tokens.weight', shape: [8, H] }];
    for (let l = 0; l < layers; l++) {
      for (const r of roles) {
        const name = `model.layers.${l}.${r}.weight`;
        if (dense(l, r)) p.push({ kind: 'dense', name, shape: [H, H] });
        else p.push({ kind: 'quantized', name, shape: [H, H], qtype: 'int4_g16_asym', grid: { bits: 4, groupSize: 16, sym: false } });
      }
    }
    p.push({ kind: 'dense', name: 'lm_head.weight', shape: [8, H] });
    return p;
  }
  async function write(out: string, p: TensorPlanEntry[]): Promise<Map<string, QuantizedWeight>> {
    const w = await AwqCheckpointWriter.create(out, { plan: p, sourceConfig: srcConfig });
    const qs = new Map<string, QuantizedWeight>();
    let seed = 40;
    for (const e of p) {
      if (e.kind === 'dense') await w.writeDense(e.name, new Float32Array(e.shape.reduce((a, b) => a * b, 1)).fill(0.5));
      else {
        const q = awq({ n: e.shape[0], k: e.shape[1], groupSize: 16, sym: false, seed: seed++ });
        qs.set(e.name, q);
        await w.writeQuantized(e.name, q);
      }
    }
    await w.finish();
    return qs;
  }

  it('writes the GEMM tensors and quantization_config; modules_to_not_convert null when all are quantized', async () => {
    const out = path.join(tmp, 'awq-all');
    const qs = await write(out, plan(2, () => false));
    const cfg = JSON.parse(fs.readFileSync(path.join(out, 'config.json'), 'utf8'));
    expect(cfg.quantization_config).toEqual({
      quant_method: 'awq',
      zero_point: true,
      group_size: 16,
      bits: 4,
      version: 'gemm',
      modules_to_not_convert: null,
    });
    const f = await SafetensorsFile.open(path.join(out, 'model.safetensors'));
    try {
      expect(f.metadata['format']).toBe('pt');
      for (const [name, q] of qs) {
        const pre = name.slice(0, -'.weight'.length);
        const i32 = async (s: string) => {
          const raw = await f.readRaw(`${pre}.${s}`);
          return new Int32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength));
        };
        expect(f.info(`${pre}.qweight`)).toMatchObject({ dtype: 'I32', shape: [q.k, q.n / 8] });
        expect(f.info(`${pre}.qzeros`)).toMatchObject({ dtype: 'I32', shape: [q.k / 16, q.n / 8] });
        expect(f.info(`${pre}.scales`)).toMatchObject({ dtype: 'F16', shape: [q.k / 16, q.n] });
        expect(f.has(`${pre}.g_idx`)).toBe(false);
        const sr = await f.readRaw(`${pre}.scales`);
        const scales = new Uint16Array(sr.buffer.slice(sr.byteOffset, sr.byteOffset + sr.byteLength));
        const dq = dequantize_gemm({ data: await i32('qweight'), shape: [q.k, q.n / 8] }, { data: await i32('qzeros'), shape: [q.k / 16, q.n / 8] }, scales, 4, 16);
        expect(dq.weight).toEqual(expectedDequantKN(q));
      }
    } finally {
      await f.close();
    }
  });

  it('lists a role kept dense in every layer in modules_to_not_convert; refuses a partly dense role', async () => {
    const out = path.join(tmp, 'awq-dense-down');
    await write(out, plan(2, (_l, r) => r === 'mlp.down_proj'));
    const cfg = JSON.parse(fs.readFileSync(path.join(out, 'config.json'), 'utf8'));
    expect(cfg.quantization_config.modules_to_not_convert).toEqual(['mlp.down_proj']);
    const f = await SafetensorsFile.open(path.join(out, 'model.safetensors'));
    expect(f.info('model.layers.1.mlp.down_proj.weight')).toMatchObject({ dtype: 'F16', shape: [H, H] });
    await f.close();

    const bad = path.join(tmp, 'awq-partly-dense');
    await expect(
      AwqCheckpointWriter.create(bad, { plan: plan(2, (l, r) => l === 0 && r === 'mlp.down_proj'), sourceConfig: srcConfig }),
    ).rejects.toThrowError(expect.objectContaining({ code: 'E_AWQ_DENSE_LINEAR' }));
    expect(fs.existsSync(bad)).toBe(false);
  });
});
