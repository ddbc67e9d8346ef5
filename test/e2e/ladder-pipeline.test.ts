/**
 * The ladder and the SVD recipe end to end on stories260K (issue 6): the plan's bytes are the bytes the
 * checkpoint holds (read from the safetensors header by hand, not by edgeq's reader), the allocation stays
 * within the budget, a plan for snapdragon-cpu exports to GGUF with no requantization (each linear Q4_0,
 * Q8_0 or F16; the width 172 that Q4_0's blocks cannot take stays F16), and `--method svd` writes low-rank
 * factors at the rank the ratio gives, which the core runs packed as it runs the dequantized reference.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LLAMA_LINEARS, linearWeightName } from '../../src/arch/llama-tensors.js';
import { loadCalibrationText, sampleCalibration, type CalibrationSample } from '../../src/calib/calibration.js';
import { BUNDLED } from '../../src/core/paths.js';
import { exportGguf } from '../../src/export/gguf-export.js';
import { SafetensorsCheckpoint } from '../../src/formats/safetensors/checkpoint.js';
import { GgufFile } from '../../src/formats/gguf/reader.js';
import type { MatmulBackend } from '../../src/kernels/backend.js';
import { createWasmBackend } from '../../src/kernels/wasm-backend.js';
import { planLadder } from '../../src/ladder/ladder-plan.js';
import { rankForRatio } from '../../src/lowrank/whitened-svd.js';
import { loadModel } from '../../src/model/load-model.js';
import { readModelConfig } from '../../src/model/model-dir.js';
import { quantizeModel } from '../../src/pipeline/quantize-model.js';
import { findExecutionTarget } from '../../src/targets/execution-targets.js';
import { EdgeqTokenizer } from '../../src/tokenizer/tokenizer.js';
import { svdTreatments } from '../../src/cli/commands/quantize-recipe.js';
import { exportQnnOnnx, type ParamEncoding } from '../../src/formats/qnn/index.js';
import { readOnnx } from '../helpers/onnx-read.js';
import { runCli } from '../helpers/run-cli.js';

const STORIES = BUNDLED.models.stories260K!;
const { config } = readModelConfig(STORIES);
let tmp: string;
let backend: MatmulBackend;
let cal: CalibrationSample;

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'edgeq-ladder-'));
  backend = await createWasmBackend({ threads: 1 });
  cal = sampleCalibration(EdgeqTokenizer.load(STORIES, config.bosTokenId, config.eosTokenIds), loadCalibrationText('brown'), { samples: 4, seqLen: 32, seed: 0 });
});
afterAll(async () => {
  await backend?.dispose();
  fs.rmSync(tmp, { recursive: true, force: true });
});

/** The raw safetensors header (u64 length + JSON), read by hand. */
function rawHeader(file: string): Record<string, { data_offsets?: [number, number] } & Record<string, string>> {
  const buf = fs.readFileSync(file);
  const len = Number(buf.readBigUInt64LE(0));
  return JSON.parse(buf.subarray(8, 8 + len).toString('utf8'));
}

/** Stored bytes per tensor name, from the raw header. */
function headerBytes(file: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const [name, v] of Object.entries(rawHeader(file))) if (v.data_offsets) out.set(name, v.data_offsets[1] - v.data_offsets[0]);
  return out;
}

/** Logits of the first 32 calibration tokens from checkpoint `dir` run packed (a) and dequantized (b). */
async function packedAndDequantizedLogits(dir: string): Promise<{ a: Float32Array; b: Float32Array }> {
  const packed = await loadModel(dir, backend);
  const deq = await loadModel(dir, backend, { quantized: 'dequantized' });
  try {
    const ids = Array.from(cal.ids.subarray(0, 32));
    return { a: packed.forward(ids, packed.createCache(32))!, b: deq.forward(ids, deq.createCache(32))! };
  } finally {
    packed.dispose();
    deq.dispose();
  }
}

/** Bytes the file holds for block linear `weightName` (its weight, or qweight/scales/qzeros/g_idx, or low-rank factors). */
function linearBytes(bytes: Map<string, number>, weightName: string): number {
  const prefix = weightName.slice(0, -'.weight'.length);
  let total = 0;
  for (const [name, b] of bytes) if (name === weightName || (name.startsWith(`${prefix}.`) && !name.endsWith('.bias'))) total += b;
  return total;
}

const plans = new Map<string, ReturnType<typeof planLadderOnce>>();
/** One plan per (target, budget), shared by the tests that quantize it with different methods. */
function ladder(targetId: string, bpw: number) {
  const key = `${targetId}@${bpw}`;
  if (!plans.has(key)) plans.set(key, planLadderOnce(targetId, bpw));
  return plans.get(key)!;
}

async function planLadderOnce(targetId: string, bpw: number) {
  const model = await loadModel(STORIES, backend);
  const reader = await SafetensorsCheckpoint.open(STORIES);
  try {
    return await planLadder({ config, model, reader, backend, target: findExecutionTarget(targetId), sym: targetId !== 'wasm', budget: { bitsPerWeight: bpw }, ids: cal.ids, n: 2, T: 32 });
  } finally {
    model.dispose();
    await reader.close();
  }
}

async function quantizeWith(name: string, treatments: Map<string, import('../../src/ladder/rungs.js').ResolvedTreatment>, method: 'gptq' | 'rtn' | 'awq' = 'gptq', recipe?: { method: 'svd' | 'ladder'; details: Record<string, unknown> }): Promise<string> {
  const outDir = path.join(tmp, name);
  await quantizeModel({ method, recipe, grid: { bits: 4, groupSize: 128, sym: false }, fallback: true, denseDtype: 'F32', calib: { samples: cal.n, seqLen: cal.seqLen }, treatments, modelDir: STORIES, config, outDir, calibration: cal, backend, edgeqVersion: 'test' });
  return outDir;
}

/** The checkpoint holds exactly the planned bytes per linear, records its quantizer, and runs packed as dequantized. */
async function checkLadderCheckpoint(out: string, plan: Awaited<ReturnType<typeof ladder>>['plan'], quantizer: string): Promise<void> {
  const bytes = headerBytes(path.join(out, 'model.safetensors'));
  let total = 0;
  for (const c of plan.choices) {
    expect(linearBytes(bytes, c.name), c.name).toBe(c.bytes);
    total += c.bytes;
  }
  expect(total).toBe(plan.bytes);
  const meta = rawHeader(path.join(out, 'model.safetensors')).__metadata__ as unknown as Record<string, string>;
  const prov = JSON.parse(meta['edgeq.provenance']!) as { method: string; quantizer: string; ladder: { choices: unknown[] } };
  expect(prov.method).toBe('ladder');
  expect(prov.quantizer).toBe(quantizer);
  expect(prov.ladder.choices).toHaveLength(config.numLayers * LLAMA_LINEARS.length);
  // the core runs it (packed) and it stays close to its dequantized reference
  const { a, b } = await packedAndDequantizedLogits(out);
  let num = 0;
  let den = 0;
  for (let i = 0; i < a.length; i++) {
    num += (a[i]! - b[i]!) ** 2;
    den += b[i]! ** 2;
  }
  expect(Math.sqrt(num / den)).toBeLessThan(0.05);
}

describe('ladder on wasm (every rung native, low rank included)', () => {
  it('stays within the budget, and the checkpoint holds exactly the planned bytes per linear', async () => {
    const { plan, treatments, sensitivity } = await ladder('wasm', 3);
    expect(plan.bytes).toBeLessThanOrEqual(plan.budgetBytes);
    expect(plan.budgetBytes).toBe(Math.floor((3 * plan.params) / 8));
    // the budget binds: more than one rung is in use, and the cheapest plan would be smaller
    expect(Object.keys(plan.histogram).length).toBeGreaterThan(1);
    const cheapest = sensitivity.reduce((a, s) => a + Math.min(...s.rungs.map((r) => r.bytes)), 0);
    expect(plan.bytes).toBeGreaterThan(cheapest);
    // the sensitivity is ordered the obvious way for every weight: fp16 ≤ int8 ≤ int4 g32 ≤ int2 g64
    for (const s of sensitivity) {
      const loss = new Map(s.rungs.map((r) => [r.id, r.loss]));
      expect(loss.get('fp16')!).toBeLessThanOrEqual(loss.get('int8')!); // stories260K is fp32: F16 rounds a little
      expect(loss.get('int8')!).toBeLessThanOrEqual(loss.get('int4-g32')!);
      expect(loss.get('int4-g32')!).toBeLessThanOrEqual(loss.get('int2-g64')! * 1.0001);
      expect(s.probeKl).toBeGreaterThan(0);
    }
    await checkLadderCheckpoint(await quantizeWith('ladder-wasm-3', treatments, 'gptq', { method: 'ladder', details: { ...plan } }), plan, 'gptq');
  }, 240_000);

  it('--quantizer awq: the same plan with every block AWQ-scaled first (fp16 and low-rank linears take the scales) holds the same bytes', async () => {
    const { plan, treatments } = await ladder('wasm', 3);
    // the plan mixes the rungs AWQ had to learn to pass through: quantized ones and at least one unquantized
    expect([...treatments.values()].some((t) => t.kind === 'quantized')).toBe(true);
    expect([...treatments.values()].some((t) => t.kind !== 'quantized')).toBe(true);
    await checkLadderCheckpoint(await quantizeWith('ladder-wasm-3-awq', treatments, 'awq', { method: 'ladder', details: { ...plan } }), plan, 'awq');
  }, 240_000);
});

describe('ladder on snapdragon-cpu (Q4_0 / Q8_0 / F16 only)', () => {
  it('plans only what the target runs and exports to GGUF without requantization', async () => {
    const { plan, treatments } = await ladder('snapdragon-cpu', 8);
    expect(plan.rungs.map((r) => r.id)).toEqual(['fp16', 'int8', 'int4-g32']);
    for (const c of plan.choices) expect(['F16', 'int8_g32_sym', 'int4_g32_sym']).toContain(c.type);
    // Q4_0 blocks of 32 cannot cover down_proj's k = 172: per-channel is not native, so it stays F16
    for (let l = 0; l < config.numLayers; l++) expect(plan.choices.find((c) => c.name === linearWeightName(l, LLAMA_LINEARS.find((s) => s.role === 'down_proj')!))!.type).toBe('F16');
    const out = await quantizeWith('ladder-sd-5', treatments);
    const file = path.join(tmp, 'ladder-sd.gguf');
    const r = await exportGguf({ modelDir: out, out: file });
    expect(r.requantize).toBeNull();
    expect(r.counts.requantize ?? 0).toBe(0);
    const g = await GgufFile.open(file);
    try {
      const types = new Map(g.tensors.map((t) => [t.name, t.type.name]));
      const want: Record<string, string> = { F16: 'F16', int8_g32_sym: 'Q8_0', int4_g32_sym: 'Q4_0' };
      const seen = new Set<string>();
      for (const c of plan.choices) seen.add(want[c.type]!);
      const linearTypes = new Set([...types].filter(([n]) => /^blk\.\d+\.(attn_[qkvo]|ffn_(gate|up|down))\.weight$/.test(n)).map(([, t]) => t));
      expect([...linearTypes].sort()).toEqual([...seen].sort());
    } finally {
      await g.close();
    }
  }, 240_000);
});

describe('--method svd', () => {
  it('writes factors at the ratio\'s rank; packed fp16 factors run as their dequantized reference', async () => {
    const treatments = svdTreatments(config, { method: 'svd', ratio: 0.8, whitening: 'svdllm', quantizer: 'gptq', 'sensitivity-samples': 1, 'sensitivity-seqlen': 1 });
    const out = await quantizeWith('svd-80', treatments, 'rtn');
    const bytes = headerBytes(path.join(out, 'model.safetensors'));
    for (let l = 0; l < config.numLayers; l++)
      for (const spec of LLAMA_LINEARS) {
        const [n, k] = spec.shape(config);
        const r = rankForRatio(n, k, 0.8);
        const prefix = linearWeightName(l, spec).slice(0, -'.weight'.length);
        expect(bytes.get(`${prefix}.lowrank_u.weight`)).toBe(n * r * 2);
        expect(bytes.get(`${prefix}.lowrank_v.weight`)).toBe(r * k * 2);
        expect(bytes.has(`${prefix}.weight`)).toBe(false);
      }
    const { a, b } = await packedAndDequantizedLogits(out);
    let worst = 0;
    let scale = 0;
    for (let i = 0; i < a.length; i++) {
      worst = Math.max(worst, Math.abs(a[i]! - b[i]!));
      scale = Math.max(scale, Math.abs(b[i]!));
    }
    expect(worst / scale).toBeLessThan(1e-4);
  }, 240_000);
});

describe('CLI', () => {
  it('ladder --dry-run --json prints the plan; bad recipe flags are refused', async () => {
    const r = await runCli(['quantize', '-m', STORIES, '--method', 'ladder', '--target-bpw', '4', '--calib-samples', '2', '--calib-seqlen', '32', '--sensitivity-samples', '2', '--sensitivity-seqlen', '32', '--dry-run', '--json', '--threads', '1']);
    expect(r.code, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout) as { ladder: { bytes: number; budgetBytes: number; target: string }; plan: { entries: { kind: string }[] } };
    expect(j.ladder.target).toBe('wasm');
    expect(j.ladder.bytes).toBeLessThanOrEqual(j.ladder.budgetBytes);
    // a real run: --json carries the plan too, and the checkpoint's linears take exactly its bytes
    const outDir = path.join(tmp, 'cli-ladder');
    const q = await runCli(['quantize', '-m', STORIES, '--method', 'ladder', '--target-bpw', '4', '--calib-samples', '2', '--calib-seqlen', '32', '--sensitivity-samples', '2', '--sensitivity-seqlen', '32', '-o', outDir, '--json', '--threads', '1']);
    expect(q.code, q.stderr).toBe(0);
    const qj = JSON.parse(q.stdout) as { method: string; ladder: { bytes: number; choices: { name: string; bytes: number }[] } };
    expect(qj.method).toBe('ladder');
    const written = headerBytes(path.join(outDir, 'model.safetensors'));
    expect(qj.ladder.choices.reduce((a, c) => a + linearBytes(written, c.name), 0)).toBe(qj.ladder.bytes);
    const bad = async (args: string[], code: string) => {
      const x = await runCli(['quantize', '-m', STORIES, '-o', path.join(tmp, 'never'), ...args]);
      expect(x.code).not.toBe(0);
      expect(x.stderr).toContain(code);
      expect(fs.existsSync(path.join(tmp, 'never'))).toBe(false);
    };
    await bad(['--method', 'ladder'], 'needs exactly one budget');
    await bad(['--method', 'ladder', '--target-bpw', '3', '--max-size', '1'], 'needs exactly one budget');
    await bad(['--method', 'svd'], 'needs --ratio');
    await bad(['--method', 'svd', '--ratio', '1.5'], '--ratio must be in (0, 1]');
    await bad(['--method', 'svd', '--ratio', '0.8', '--target', 'snapdragon-cpu'], 'cannot run low-rank factors');
    await bad(['--method', 'gptq', '--ratio', '0.8'], '--ratio applies to --method svd only');
    await bad(['--method', 'ladder', '--target-bpw', '3', '--bits', '4'], 'chooses its own types');
  }, 240_000);
});

describe('ladder on snapdragon-npu (QNN encodings: LPBQ 4-bit, per-channel int8)', () => {
  it('the plan\'s bytes and output errors are those of the encodings and weights the QNN export writes', async () => {
    const { plan, treatments, sensitivity } = await ladder('snapdragon-npu', 6);
    expect(new Set(plan.choices.map((c) => c.type)).size).toBeGreaterThan(1);
    // RTN: the pipeline writes the very integers the sensitivity pass priced
    const out = await quantizeWith('ladder-npu-6', treatments, 'rtn', { method: 'ladder', details: { ...plan } });
    const q = await exportQnnOnnx({ modelDir: out, outDir: path.join(tmp, 'ladder-npu-qnn') });
    const enc = JSON.parse(fs.readFileSync(q.encodingsFile, 'utf8')) as { param_encodings: ParamEncoding[] };
    const { initializerF32 } = readOnnx(path.join(tmp, 'ladder-npu-qnn'));
    const src = await SafetensorsCheckpoint.open(STORIES);
    try {
      let checked = 0;
      for (const c of plan.choices) {
        if (c.type === 'F16') continue;
        const w = q.weights.find((x) => x.weight === c.name)!;
        const e = enc.param_encodings.find((x) => x.name === w.initializer)!;
        const s = sensitivity.find((x) => x.name === c.name)!;
        const { n, k } = s;
        // device bytes from the JSON entry itself: integers + 4-bit block multipliers + fp16 channel scales
        const bytesFromJson = e.enc_type === 'LPBQ' ? Math.ceil((n * k * e.compressed_bw) / 8) + Math.ceil((e.per_block_int_scale.length * 4) / 8) + 2 * e.scale.length : Math.ceil((n * k * e.bw) / 8) + 2 * e.scale.length;
        expect(bytesFromJson, c.name).toBe(c.bytes);
        expect(e.enc_type === 'PER_CHANNEL' ? e.bw : e.compressed_bw).toBe(c.type.startsWith('int8') ? 8 : 4);
        // the written float weights ([K, N] initializer) are the ones the plan priced: same ‖W − Ŵ‖²
        const wt = initializerF32(w.initializer);
        const orig = await src.readF32(c.name);
        let sse = 0;
        for (let r = 0; r < n; r++) for (let j = 0; j < k; j++) sse += (orig[r * k + j]! - wt[j * n + r]!) ** 2;
        const rung = s.rungs.find((r) => r.id === c.rung)!;
        expect(sse / rung.weightError, c.name).toBeCloseTo(1, 6);
        checked++;
      }
      expect(checked).toBeGreaterThan(0);
    } finally {
      await src.close();
    }
  }, 300_000);
});
