/**
 * The ONNX export run in the real runtime: onnxruntime-node executes edgeq's graph (MatMulNBits for the
 * quantized linears, the KV cache as inputs/outputs) and its logits are compared with edgeq's own forward
 * on the same (dequantized) weights — an independent implementation of every op, kernel and layout.
 * Models: brown-llama-7m (GQA 4/2, head_dim 64) in fp32 and RTN int4 g32 sym / g128 asym; stories260K
 * (GQA 8/4, head_dim 8, K = 172 for down_proj: per-channel fallback written as replicated blocks) int4 g32
 * asym and sym, and a GPTQ act-order checkpoint (MatMulNBits g_idx).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LlamaConfig } from '../../src/arch/llama-config.js';
import { loadCalibrationText } from '../../src/calib/calibration.js';
import { sampleCalibration } from '../../src/calib/sample.js';
import { EdgeqError } from '../../src/core/errors.js';
import { exportQnnOnnx } from '../../src/formats/qnn/index.js';
import { exportOnnx, presentKeyName, presentValueName, pastKeyName, pastValueName, type OnnxLinearInfo } from '../../src/formats/onnx/index.js';
import type { MatmulBackend } from '../../src/kernels/backend.js';
import { createWasmBackend } from '../../src/kernels/wasm-backend.js';
import { loadModel } from '../../src/model/load-model.js';
import { readModelConfig } from '../../src/model/model-dir.js';
import { quantizeModel } from '../../src/pipeline/quantize-model.js';
import type { GridSpec } from '../../src/qtypes/types.js';
import { EdgeqTokenizer } from '../../src/tokenizer/tokenizer.js';
import { FIXTURE_MODELS } from '../helpers/fixtures.js';

let tmp: string;
let backend: MatmulBackend;
beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'edgeq-onnx-'));
  backend = await createWasmBackend({ threads: 1 });
});
afterAll(async () => {
  await backend?.dispose();
  fs.rmSync(tmp, { recursive: true, force: true });
});

async function quantize(model: string, name: string, grid: GridSpec, extra: { method?: 'rtn' | 'gptq'; actOrder?: boolean } = {}): Promise<string> {
  const { config } = readModelConfig(model);
  const outDir = path.join(tmp, name);
  const method = extra.method ?? 'rtn';
  const calibration =
    method === 'rtn' ? null : sampleCalibration(EdgeqTokenizer.load(model, config.bosTokenId, config.eosTokenIds), loadCalibrationText('brown'), { samples: 4, seqLen: 64, seed: 0 });
  await quantizeModel({
    method,
    grid,
    fallback: true,
    denseDtype: 'F32',
    actOrder: extra.actOrder,
    calib: { samples: 4, seqLen: 64 },
    modelDir: model,
    config,
    outDir,
    calibration,
    backend,
    edgeqVersion: 'test',
  });
  return outDir;
}

/** Deterministic token ids in [3, vocab). */
function tokens(n: number, vocab: number, seed: number): number[] {
  let s = seed >>> 0;
  return Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return 3 + (s % (vocab - 3));
  });
}

interface OrtStep {
  logits: Float32Array;
  present: ort.Tensor[][]; // [layer][key, value]
}

/** One onnxruntime call for a batch of 1: ids at positions [past, past + ids.length). */
async function ortStep(sess: ort.InferenceSession, c: LlamaConfig, ids: number[], past: ort.Tensor[][] | null): Promise<OrtStep> {
  const pastLen = past ? past[0][0].dims[2] : 0;
  const T = ids.length;
  const feeds: Record<string, ort.Tensor> = {
    input_ids: new ort.Tensor('int64', BigInt64Array.from(ids.map(BigInt)), [1, T]),
    attention_mask: new ort.Tensor('int64', new BigInt64Array(pastLen + T).fill(1n), [1, pastLen + T]),
    position_ids: new ort.Tensor('int64', BigInt64Array.from({ length: T }, (_, i) => BigInt(pastLen + i)), [1, T]),
  };
  for (let l = 0; l < c.numLayers; l++) {
    feeds[pastKeyName(l)] = past ? past[l][0] : new ort.Tensor('float32', new Float32Array(0), [1, c.numKvHeads, 0, c.headDim]);
    feeds[pastValueName(l)] = past ? past[l][1] : new ort.Tensor('float32', new Float32Array(0), [1, c.numKvHeads, 0, c.headDim]);
  }
  const out = await sess.run(feeds);
  return {
    logits: out.logits.data as Float32Array,
    present: Array.from({ length: c.numLayers }, (_, l) => [out[presentKeyName(l)], out[presentValueName(l)]]),
  };
}

async function edgeqLogits(dir: string, ids: number[]): Promise<Float32Array> {
  const model = await loadModel(dir, backend, { quantized: 'dequantized' });
  try {
    return model.forward(ids, model.createCache(ids.length), 'all')!;
  } finally {
    model.dispose();
  }
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

function relL2(a: Float32Array, b: Float32Array): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < a.length; i++) {
    num += (a[i] - b[i]) ** 2;
    den += b[i] ** 2;
  }
  return Math.sqrt(num / den);
}

/** Export `dir`, run a prompt in one call and the same tokens as prompt + single-token decode steps. */
async function checkModel(dir: string, label: string, quantized: 'matmulnbits' | 'dequantized' = 'matmulnbits'): Promise<{ maxDiff: number; rel: number; decodeDiff: number; linears: OnnxLinearInfo[] }> {
  const { config: c } = readModelConfig(dir);
  const out = path.join(tmp, `${label}.onnx-out`);
  const res = await exportOnnx({ modelDir: dir, outDir: out, quantized });
  const sess = await ort.InferenceSession.create(res.modelFile, { intraOpNumThreads: 1, graphOptimizationLevel: 'all' });
  try {
    const ids = tokens(12, c.vocabSize, 7);
    const ref = await edgeqLogits(dir, ids);
    const full = await ortStep(sess, c, ids, null);
    const maxDiff = maxAbsDiff(full.logits, ref);
    const rel = relL2(full.logits, ref);
    // KV cache: prompt of 8 tokens, then 4 single-token steps fed the returned present.* as past.
    let step = await ortStep(sess, c, ids.slice(0, 8), null);
    let decodeDiff = maxAbsDiff(step.logits, full.logits.subarray(0, 8 * c.vocabSize));
    for (let t = 8; t < ids.length; t++) {
      step = await ortStep(sess, c, [ids[t]], step.present);
      expect(step.present[0][0].dims).toEqual([1, c.numKvHeads, t + 1, c.headDim]);
      decodeDiff = Math.max(decodeDiff, maxAbsDiff(step.logits, full.logits.subarray(t * c.vocabSize, (t + 1) * c.vocabSize)));
    }
    console.log(`${label}: onnxruntime vs edgeq logits max|Δ| ${maxDiff.toExponential(2)}, rel L2 ${rel.toExponential(2)}; KV decode vs full max|Δ| ${decodeDiff.toExponential(2)}`);
    return { maxDiff, rel, decodeDiff, linears: res.graph.linears };
  } finally {
    await sess.release();
  }
}

/** Raw onnxruntime call with explicit batch feeds. */
async function ortRun(sess: ort.InferenceSession, c: LlamaConfig, ids: number[][], mask: number[][], pos: number[][], past: ort.Tensor[][] | null) {
  const B = ids.length;
  const T = ids[0].length;
  const i64 = (rows: number[][]) => new ort.Tensor('int64', BigInt64Array.from(rows.flat().map(BigInt)), [rows.length, rows[0].length]);
  const feeds: Record<string, ort.Tensor> = { input_ids: i64(ids), attention_mask: i64(mask), position_ids: i64(pos) };
  for (let l = 0; l < c.numLayers; l++) {
    feeds[pastKeyName(l)] = past ? past[l][0] : new ort.Tensor('float32', new Float32Array(0), [B, c.numKvHeads, 0, c.headDim]);
    feeds[pastValueName(l)] = past ? past[l][1] : new ort.Tensor('float32', new Float32Array(0), [B, c.numKvHeads, 0, c.headDim]);
  }
  const out = await sess.run(feeds);
  expect(out.logits.dims).toEqual([B, T, c.vocabSize]);
  return { logits: out.logits.data as Float32Array, present: Array.from({ length: c.numLayers }, (_, l) => [out[presentKeyName(l)], out[presentValueName(l)]]) };
}

describe('ONNX export runs in onnxruntime-node with edgeq\'s logits', () => {
  it('batch of 2 with left padding (attention_mask, position_ids) + one batched decode step = each sequence alone', async () => {
    const dir = FIXTURE_MODELS.stories260K;
    const { config: c } = readModelConfig(dir);
    const res = await exportOnnx({ modelDir: dir, outDir: path.join(tmp, 'stories-batch') });
    const sess = await ort.InferenceSession.create(res.modelFile, { intraOpNumThreads: 1 });
    try {
      const a = tokens(11, c.vocabSize, 1);
      const b = tokens(7, c.vocabSize, 2);
      const pad = 4;
      const V = c.vocabSize;
      const prompt = await ortRun(
        sess,
        c,
        [a.slice(0, 10), [...Array(pad).fill(0), ...b.slice(0, 6)]],
        [Array(10).fill(1), [...Array(pad).fill(0), ...Array(6).fill(1)]],
        [[...Array(10).keys()], [...Array(pad).fill(0), ...Array(6).keys()]],
        null,
      );
      const step = await ortRun(sess, c, [[a[10]], [b[6]]], [Array(11).fill(1), [...Array(pad).fill(0), ...Array(7).fill(1)]], [[10], [6]], prompt.present);
      const refA = await edgeqLogits(dir, a);
      const refB = await edgeqLogits(dir, b);
      // sequence a: rows 0..9 of the prompt, then the decode step (position 10)
      expect(maxAbsDiff(prompt.logits.subarray(0, 10 * V), refA.subarray(0, 10 * V))).toBeLessThan(1e-3);
      expect(maxAbsDiff(step.logits.subarray(0, V), refA.subarray(10 * V, 11 * V))).toBeLessThan(1e-3);
      // sequence b: its 6 real tokens after the padding, then the decode step (position 6)
      expect(maxAbsDiff(prompt.logits.subarray((10 + pad) * V, 20 * V), refB.subarray(0, 6 * V))).toBeLessThan(1e-3);
      expect(maxAbsDiff(step.logits.subarray(V, 2 * V), refB.subarray(6 * V, 7 * V))).toBeLessThan(1e-3);
      expect(Array.from(prompt.logits).every(Number.isFinite)).toBe(true); // fully masked padding rows stay finite
    } finally {
      await sess.release();
    }
  });

  it('brown-llama-7m fp32', async () => {
    const r = await checkModel(FIXTURE_MODELS.brownLlama7m, 'brown-fp32');
    expect(r.rel).toBeLessThan(1e-5);
    expect(r.maxDiff).toBeLessThan(1e-3);
    expect(r.decodeDiff).toBeLessThan(1e-3);
  });

  const quantized: { label: string; model: keyof typeof FIXTURE_MODELS; grid: GridSpec; method?: 'gptq'; actOrder?: boolean }[] = [
    { label: 'brown-int4-g32-sym', model: 'brownLlama7m', grid: { bits: 4, groupSize: 32, sym: true } },
    { label: 'brown-int4-g128-asym', model: 'brownLlama7m', grid: { bits: 4, groupSize: 128, sym: false } },
    { label: 'brown-int4-g64-asym', model: 'brownLlama7m', grid: { bits: 4, groupSize: 64, sym: false } },
    { label: 'stories-int4-g32-asym', model: 'stories260K', grid: { bits: 4, groupSize: 32, sym: false } },
    { label: 'stories-int4-g32-sym', model: 'stories260K', grid: { bits: 4, groupSize: 32, sym: true } },
    { label: 'stories-int4-pc-asym', model: 'stories260K', grid: { bits: 4, groupSize: -1, sym: false } },
    { label: 'brown-int8-g128-asym', model: 'brownLlama7m', grid: { bits: 8, groupSize: 128, sym: false } },
    { label: 'stories-gptq-act-order-g32-asym', model: 'stories260K', grid: { bits: 4, groupSize: 32, sym: false }, method: 'gptq', actOrder: true },
  ];
  for (const q of quantized) {
    it(`${q.label}: MatMulNBits logits = edgeq's dequantized forward; KV decode = full sequence`, async () => {
      const dir = await quantize(FIXTURE_MODELS[q.model], q.label, q.grid, { method: q.method, actOrder: q.actOrder });
      const r = await checkModel(dir, q.label);
      const { config } = readModelConfig(dir);
      const nbits = r.linears.filter((x) => x.kind === 'matmulnbits');
      expect(nbits).toHaveLength(7 * config.numLayers); // every block linear runs as MatMulNBits
      // act-order: every linear with 32-groups (all but stories' K = 172 down_proj, per channel) permuted
      if (q.actOrder) expect(nbits.filter((x) => x.actOrder === 'permuted').map((x) => x.weight)).toEqual(nbits.filter((x) => !x.weight.includes('down_proj')).map((x) => x.weight));
      expect(r.rel).toBeLessThan(1e-5);
      expect(r.maxDiff).toBeLessThan(1e-3);
      expect(r.decodeDiff).toBeLessThan(1e-3);
    });
  }

  it('quantized linears as float MatMuls (the QNN path\'s graph) = edgeq\'s forward; the LPBQ re-expression\'s cost measured', async () => {
    const dir = await quantize(FIXTURE_MODELS.brownLlama7m, 'brown-g64-sym-dq', { bits: 4, groupSize: 64, sym: true });
    const r = await checkModel(dir, 'brown-int4-g64-sym-dequantized', 'dequantized');
    expect(r.linears.every((x) => x.kind === 'matmul')).toBe(true);
    expect(r.rel).toBeLessThan(1e-5);
    expect(r.maxDiff).toBeLessThan(1e-3);
    expect(r.decodeDiff).toBeLessThan(1e-3);
    // the QNN export: same graph, weights re-expressed on the LPBQ grid
    const { config: c } = readModelConfig(dir);
    const qnn = await exportQnnOnnx({ modelDir: dir, outDir: path.join(tmp, 'brown-g64-sym-qnn') });
    const sess = await ort.InferenceSession.create(qnn.onnx.modelFile, { intraOpNumThreads: 1 });
    try {
      const ids = tokens(12, c.vocabSize, 7);
      const rel = relL2((await ortStep(sess, c, ids, null)).logits, await edgeqLogits(dir, ids));
      console.log(`brown int4 g64 sym on the LPBQ grid (onnxruntime, QNN export) vs edgeq's weights: logits rel L2 ${rel.toExponential(2)}`);
      expect(rel).toBeGreaterThan(0); // the scales did move…
      expect(rel).toBeLessThan(0.05); // …but the model is the same one
    } finally {
      await sess.release();
    }
  });

  it('3-bit: refused before anything is written, with the reason; --allow-requantize re-quantizes to int4 and says by how much', async () => {
    const dir = await quantize(FIXTURE_MODELS.stories260K, 'stories-int3-g32', { bits: 3, groupSize: 32, sym: false });
    const out = path.join(tmp, 'stories-int3-onnx');
    const err = await exportOnnx({ modelDir: dir, outDir: out }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EdgeqError);
    expect((err as EdgeqError).code).toBe('E_ONNX_GRID');
    expect((err as EdgeqError).message).toMatch(/3-bit/);
    expect(fs.existsSync(out)).toBe(false);
    expect(fs.readdirSync(tmp).filter((f) => f.startsWith('.stories-int3-onnx'))).toEqual([]);
    const res = await exportOnnx({ modelDir: dir, outDir: out, requantize: { bits: 4, groupSize: 32, sym: false } });
    const { config: c } = readModelConfig(dir);
    const requant = res.graph.linears.filter((l) => l.requantized);
    expect(requant).toHaveLength(7 * c.numLayers);
    for (const l of requant) {
      expect(l.requantized!.from).toMatch(/^int3_/);
      expect(l.requantized!.to).toMatch(/^int4_/);
      expect(l.requantized!.relError).toBeGreaterThan(0);
      expect(l.requantized!.relError).toBeLessThan(0.2);
    }
    const sess = await ort.InferenceSession.create(res.modelFile, { intraOpNumThreads: 1 });
    try {
      const ids = tokens(12, c.vocabSize, 7);
      const rel = relL2((await ortStep(sess, c, ids, null)).logits, await edgeqLogits(dir, ids));
      console.log(`stories int3 g32 re-quantized to int4 g32 for MatMulNBits: logits rel L2 vs the int3 model ${rel.toExponential(2)}`);
      expect(rel).toBeGreaterThan(0);
      expect(rel).toBeLessThan(0.2);
    } finally {
      await sess.release();
    }
  });
});
