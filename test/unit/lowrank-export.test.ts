/**
 * Mixed and low-rank edgeq checkpoints in `edgeq inspect` and the exporters:
 *   - inspect lists every low-rank linear (rank, factor types, bytes, bits per weight of n·k), CLI and JSON;
 *   - GGUF: a checkpoint mixing Q4_0-grid, Q8_0-grid and fp16 linears exports with no requantization, each
 *     tensor in its own type, bit-exact (block scales and integers checked by hand, decoded values equal);
 *   - low-rank linears: GGUF / ONNX / QNN / Snapdragon refuse them without --allow-requantize (naming the
 *     tensor and the flag); with it GGUF and ONNX expand U·V and quantize it (error vs an independent
 *     float64 U·V); gptq / awq refuse them.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectedTensors } from '../../src/arch/llama-tensors.js';
import { f16BitsToF32 } from '../../src/core/dtype.js';
import { BUNDLED } from '../../src/core/paths.js';
import { exportGguf } from '../../src/export/gguf-export.js';
import { verifyGguf } from '../../src/export/gguf-verify.js';
import { exportHfQuant } from '../../src/export/hf-quant-export.js';
import { exportSnapdragonBundle } from '../../src/export/snapdragon-bundle.js';
import { llamaTensorMappings, qkRowPermutation } from '../../src/formats/gguf/llama-layout.js';
import { GgufFile } from '../../src/formats/gguf/reader.js';
import * as ort from 'onnxruntime-node';
import { exportOnnx } from '../../src/formats/onnx/export-onnx.js';
import { pastKeyName, pastValueName } from '../../src/formats/onnx/index.js';
import { loadModel } from '../../src/model/load-model.js';
import { exportQnnCalibrated } from '../../src/formats/qnn/export-qnn-calibrated.js';
import type { MatmulBackend } from '../../src/kernels/backend.js';
import { createWasmBackend } from '../../src/kernels/wasm-backend.js';
import { inspectModel } from '../../src/model/inspect-model.js';
import { readModelConfig } from '../../src/model/model-dir.js';
import { runCli } from '../helpers/run-cli.js';
import { factorF64, G, mixedWithLowRank, writeMixedCheckpoint, type WrittenCheckpoint } from './lowrank-checkpoint-fixture.js';

const STORIES = BUNDLED.models.stories260K!;
let tmp: string;
let lrDir: string;
let lr: WrittenCheckpoint;
let mixDir: string;
let mix: WrittenCheckpoint;
let backend: MatmulBackend;

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'edgeq-lowrank-export-'));
  lrDir = path.join(tmp, 'lowrank');
  lr = await writeMixedCheckpoint(STORIES, lrDir, mixedWithLowRank);
  mixDir = path.join(tmp, 'mixed-native');
  // every quantized linear on a GGUF block type's grid, fp16 where the width is not a multiple of 32
  mix = await writeMixedCheckpoint(STORIES, mixDir, (role, _l, _n, k) =>
    role === 'v_proj' || k % 32 !== 0 ? { kind: 'dense' } : role === 'q_proj' || role === 'o_proj' ? { kind: 'quantized', grid: G.q4_0 } : { kind: 'quantized', grid: G.q8_0 },
  );
  backend = await createWasmBackend({ threads: 1 });
}, 120_000);
afterAll(async () => {
  await backend?.dispose();
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe('inspect', () => {
  it('reports each low-rank linear with its rank, factor storage, bytes and bits per weight of n·k', async () => {
    const r = await inspectModel(lrDir, { checkFinite: true });
    expect(r.lowRank.length).toBe(lr.lowRank.size);
    const o = r.lowRank.find((t) => t.name === 'model.layers.0.self_attn.o_proj.weight')!;
    // U int8 per channel sym 64×16: 64·16 codes + 64 fp16 scales; V int4 g32 asym 16×64: 16·32 codes + 16·2 fp16 scales + 16·2 zeros
    const bytes = 64 * 16 + 64 * 2 + (16 * 32 + 16 * 2 * 2 + 16 * 2);
    expect(o).toEqual({ name: o.name, n: 64, k: 64, rank: 16, u: 'int8_pc_sym', v: 'int4_g32_asym', bytes, bitsPerWeight: (8 * bytes) / (64 * 64) });
    const gate = r.lowRank.find((t) => t.name === 'model.layers.0.mlp.gate_proj.weight')!;
    expect([gate.u, gate.v, gate.bytes]).toEqual(['F16', 'F16', (172 * 24 + 24 * 64) * 2]);
    // parameters: the model's, each low-rank linear counted as the n·k weight it stands for
    const { config } = readModelConfig(STORIES);
    expect(r.params).toBe(expectedTensors(config).reduce((a, t) => a + t.shape.reduce((x, y) => x * y, 1), 0));
    // the fp16 linears (v_proj, 64×64 per layer) are F16 params of the attention group
    expect(r.groups.find((g) => g.group === 'attention')!.dtypes['F16']).toBe(5 * 64 * 32);
    expect(r.dtypes['lowrank']).toBe([...lr.lowRank.values()].reduce((a, w) => a + w.n * w.k, 0));
    expect(r.bytes).toBe(fs.statSync(path.join(lrDir, 'model.safetensors')).size - (8 + Number(fs.readFileSync(path.join(lrDir, 'model.safetensors')).readBigUInt64LE(0))));
  });

  it('`edgeq inspect` prints the low-rank table and --json carries it', async () => {
    const text = await runCli(['inspect', lrDir]);
    expect(text.code).toBe(0);
    expect(text.stdout).toContain('low-rank linears');
    expect(text.stdout).toMatch(/model\.layers\.0\.self_attn\.o_proj\.weight\s+\[64, 64\]\s+16\s+int8_pc_sym\s+int4_g32_asym\s+1760\s+3\.44/);
    const json = await runCli(['inspect', lrDir, '--json']);
    expect(json.code).toBe(0);
    expect((JSON.parse(json.stdout) as { lowRank: unknown[] }).lowRank.length).toBe(lr.lowRank.size);
    const plain = await runCli(['inspect', mixDir]);
    expect(plain.code).toBe(0);
    expect(plain.stdout).not.toContain('low-rank');
  });
});

describe('GGUF export of per-tensor mixed grids', () => {
  it('Q4_0-grid, Q8_0-grid and fp16 linears export losslessly, each in its own type', async () => {
    const out = path.join(tmp, 'mixed.gguf');
    const r = await exportGguf({ modelDir: mixDir, out });
    expect(r.counts.requantize).toBe(0);
    expect(r.requantize).toBeNull();
    expect(r.fileType).toBe('q8_0'); // 3 of 5 quantized linears per layer are Q8_0-grid
    const { config } = readModelConfig(STORIES);
    const g = await GgufFile.open(out);
    const seen = { Q4_0: 0, Q8_0: 0, F16: 0 };
    try {
      for (const m of llamaTensorMappings(config)) {
        if (m.role !== 'linear') continue;
        const hf = m.hf!;
        const t = g.tensor(m.gguf);
        const raw = await g.readRaw(m.gguf);
        const decoded = await g.readF32(m.gguf);
        const perm = m.permuteHeads ? qkRowPermutation(m.shape[0]!, m.permuteHeads) : null;
        const q = mix.quantized.get(hf);
        if (!q) {
          expect(t.type.name, hf).toBe('F16');
          seen.F16++;
          const d = mix.dense.get(hf)!;
          const k = m.shape[1]!;
          for (let row = 0; row < m.shape[0]!; row++) {
            const sr = perm ? perm[row]! : row;
            for (let c = 0; c < k; c++) {
              const i = row * k + c;
              const v = f16BitsToF32(raw[2 * i]! | (raw[2 * i + 1]! << 8));
              if (v !== d[sr * k + c]) expect(v, `${hf} [${row}, ${c}]`).toBe(d[sr * k + c]);
            }
          }
          continue;
        }
        const kind = q.grid.bits === 4 ? 'Q4_0' : 'Q8_0';
        expect(t.type.name, hf).toBe(kind);
        seen[kind]++;
        const bs = kind === 'Q4_0' ? 18 : 34;
        let mismatches = 0;
        for (let row = 0; row < q.n; row++) {
          const sr = perm ? perm[row]! : row;
          for (let gi = 0; gi < q.numGroups; gi++) {
            const o = (row * q.numGroups + gi) * bs;
            const scale = f16BitsToF32(raw[o]! | (raw[o + 1]! << 8));
            if (scale !== q.scales[sr * q.numGroups + gi]) mismatches++;
            for (let j = 0; j < 32; j++) {
              const code = q.codes[sr * q.k + gi * 32 + j]!;
              const stored = kind === 'Q4_0' ? (j < 16 ? raw[o + 2 + j]! & 15 : raw[o + 2 + j - 16]! >> 4) : ((raw[o + 2 + j]! << 24) >> 24) + 128;
              if (stored !== code) mismatches++;
              // the value llama.cpp decodes is edgeq's scale · (code − zero), exactly
              const want = q.scales[sr * q.numGroups + gi]! * (code - q.zeros[sr * q.numGroups + gi]!);
              if (decoded[row * q.k + gi * 32 + j] !== Math.fround(want)) mismatches++;
            }
          }
        }
        expect(mismatches, hf).toBe(0);
      }
    } finally {
      await g.close();
    }
    expect(seen).toEqual({ Q4_0: 2 * 5, Q8_0: 3 * 5, F16: 2 * 5 }); // per layer: q, o · k, gate, up · v, down (k = 172)
  });

  it('the mixed GGUF is the checkpoint\'s model: same perplexity in edgeq, and in llama.cpp when installed', async () => {
    const out = path.join(tmp, 'mixed-verify.gguf');
    await exportGguf({ modelDir: mixDir, out });
    const { config } = readModelConfig(mixDir);
    const v = await verifyGguf({ file: out, modelDir: mixDir, config, backend, ctx: 64, windows: 16 });
    if (!v.available) return void console.log(`llama.cpp check skipped: ${v.reason}`);
    console.log(`mixed Q4_0/Q8_0/F16 GGUF, 16 windows ctx 64: ppl llama.cpp ${v.ppl!.llamaCpp.toFixed(4)}, edgeq same weights ${v.ppl!.edgeqSameWeights.toFixed(4)}, edgeq checkpoint ${v.ppl!.edgeqSource.toFixed(4)}`);
    // lossless: the GGUF decodes to the checkpoint's dequantized weights, so edgeq scores both the same
    expect(Math.abs(v.ppl!.edgeqSameWeights / v.ppl!.edgeqSource - 1)).toBeLessThan(1e-5);
    expect(v.pplRelDiff!).toBeLessThan(5e-3);
  }, 120_000);
});

describe('low-rank linears in the exporters', () => {
  it('GGUF refuses them without --allow-requantize, naming a tensor and the flag', async () => {
    const out = path.join(tmp, 'refused.gguf');
    await expect(exportGguf({ modelDir: lrDir, out, type: 'q8_0' })).rejects.toThrowError(
      expect.objectContaining({ code: 'E_GGUF_LOWRANK', message: expect.stringMatching(/model\.layers\.\d+\.\S+\.weight, rank \d+/) as unknown, hint: expect.stringContaining('--allow-requantize') as unknown }),
    );
    expect(fs.existsSync(out)).toBe(false);
  });

  it('GGUF with --allow-requantize expands U·V and quantizes it (error vs a float64 U·V)', async () => {
    const out = path.join(tmp, 'expanded.gguf');
    const r = await exportGguf({ modelDir: lrDir, out, type: 'q8_0', allowRequantize: true });
    expect(r.warnings.some((w) => w.includes(`${lr.lowRank.size} low-rank linears expanded to U·V`))).toBe(true);
    const { config } = readModelConfig(STORIES);
    const g = await GgufFile.open(out);
    try {
      for (const m of llamaTensorMappings(config)) {
        const w = m.hf ? lr.lowRank.get(m.hf) : undefined;
        if (!w) continue;
        expect(r.tensors.find((t) => t.name === m.gguf)!.action).toBe('requantize');
        const decoded = await g.readF32(m.gguf);
        const u = factorF64(w.u);
        const v = factorF64(w.v);
        let num = 0;
        let den = 0;
        for (let i = 0; i < w.n; i++) for (let j = 0; j < w.k; j++) {
          let s = 0;
          for (let a = 0; a < w.r; a++) s += u[i * w.r + a]! * v[a * w.k + j]!;
          num += (decoded[i * w.k + j]! - s) ** 2;
          den += s * s;
        }
        const type = g.tensor(m.gguf).type.name;
        // Q8_0 on 32-wide rows; F16 where the row (172) is not a multiple of 32
        expect(Math.sqrt(num / den), `${m.hf} (${type})`).toBeLessThan(type === 'F16' ? 1e-3 : 1e-2);
      }
    } finally {
      await g.close();
    }
  });

  it('ONNX refuses them without the flag; with it they become MatMulNBits (int4) or the float product', async () => {
    const out = path.join(tmp, 'onnx-refused');
    await expect(exportOnnx({ modelDir: lrDir, outDir: out })).rejects.toThrowError(expect.objectContaining({ code: 'E_EXPORT_LOWRANK', hint: expect.stringContaining('--allow-requantize') as unknown }));
    expect(fs.existsSync(out)).toBe(false);
    const ok = await exportOnnx({ modelDir: lrDir, outDir: path.join(tmp, 'onnx-expanded'), lowRank: 'expand', lowRankGrid: G.int4g32a, requantize: G.int4g32a });
    expect(ok.lowRankExpanded.map((e) => e.weight).sort()).toEqual([...lr.lowRank.keys()].sort());
    for (const e of ok.lowRankExpanded) {
      expect(e.to).toMatch(/^int4_(g32|pc)_asym$/);
      expect(e.relError).toBeGreaterThan(0);
      expect(e.relError).toBeLessThan(0.2);
      expect(ok.graph.linears.find((l) => l.weight === e.weight)!.kind).toBe('matmulnbits');
    }
    // the fp16 linears (v_proj) stay float MatMuls; the quantized ones keep MatMulNBits
    expect(ok.graph.linears.find((l) => l.weight === 'model.layers.0.self_attn.v_proj.weight')!.kind).toBe('matmul');
    expect(ok.graph.linears.find((l) => l.weight === 'model.layers.0.self_attn.q_proj.weight')!.kind).toBe('matmulnbits');
    const float = await exportOnnx({ modelDir: lrDir, outDir: path.join(tmp, 'onnx-float'), quantized: 'dequantized', lowRank: 'expand' });
    expect(float.lowRankExpanded.every((e) => e.to === 'float' && e.relError === 0)).toBe(true);
    // the float graph in onnxruntime = edgeq's dequantized forward (low-rank linears as U·V)
    const c = float.config;
    const ids = [1, 403, 262, 300, 17, 96, 283, 448, 79, 301, 12, 55];
    const sess = await ort.InferenceSession.create(float.modelFile, { intraOpNumThreads: 1 });
    const feeds: Record<string, ort.Tensor> = {
      input_ids: new ort.Tensor('int64', BigInt64Array.from(ids.map(BigInt)), [1, ids.length]),
      attention_mask: new ort.Tensor('int64', new BigInt64Array(ids.length).fill(1n), [1, ids.length]),
      position_ids: new ort.Tensor('int64', BigInt64Array.from(ids.map((_, i) => BigInt(i))), [1, ids.length]),
    };
    for (let l = 0; l < c.numLayers; l++) {
      feeds[pastKeyName(l)] = new ort.Tensor('float32', new Float32Array(0), [1, c.numKvHeads, 0, c.headDim]);
      feeds[pastValueName(l)] = new ort.Tensor('float32', new Float32Array(0), [1, c.numKvHeads, 0, c.headDim]);
    }
    const ortLogits = (await sess.run(feeds))['logits']!.data as Float32Array;
    await sess.release();
    const model = await loadModel(lrDir, backend, { quantized: 'dequantized' });
    const mine = model.forward(ids, model.createCache(ids.length), 'all')!;
    model.dispose();
    let d = 0;
    let ref = 0;
    for (let i = 0; i < mine.length; i++) {
      d = Math.max(d, Math.abs(ortLogits[i]! - mine[i]!));
      ref = Math.max(ref, Math.abs(mine[i]!));
    }
    console.log(`low-rank float ONNX in onnxruntime vs edgeq dequantized: max |Δ| / max |logit| = ${(d / ref).toExponential(3)}`);
    expect(d / ref).toBeLessThan(1e-4);
  });

  it('QNN and the Snapdragon bundle refuse them without the flag, before writing anything', async () => {
    const q = path.join(tmp, 'qnn-refused');
    await expect(exportQnnCalibrated({ modelDir: lrDir, outDir: q, backend })).rejects.toThrowError(expect.objectContaining({ code: 'E_EXPORT_LOWRANK' }));
    expect(fs.existsSync(q)).toBe(false);
    const s = path.join(tmp, 'sd-refused');
    await expect(exportSnapdragonBundle({ modelDir: lrDir, outDir: s, backend })).rejects.toThrowError(expect.objectContaining({ code: 'E_GGUF_LOWRANK' }));
    expect(fs.existsSync(s)).toBe(false);
  });

  it('the Snapdragon bundle with --allow-requantize expands them in both parts and says so', async () => {
    const r = await exportSnapdragonBundle({ modelDir: lrDir, outDir: path.join(tmp, 'sd-expanded'), backend, allowRequantize: true });
    expect(r.manifest.gguf.lossless).toBe(false);
    expect(r.warnings.some((w) => w.includes(`${lr.lowRank.size} low-rank linears expanded to U·V first`))).toBe(true);
    expect(r.warnings.some((w) => w.startsWith(`qnn: ${lr.lowRank.size} low-rank linears expanded`))).toBe(true);
    // every low-rank linear got an LPBQ / per-channel encoding like the quantized ones
    const enc = JSON.parse(fs.readFileSync(path.join(r.outDir, 'qnn', 'model.encodings'), 'utf8')) as { param_encodings: unknown[] };
    expect(enc.param_encodings.length).toBe(lr.lowRank.size + lr.quantized.size);
  }, 120_000);

  it('gptq / awq refuse them, naming the tensor', async () => {
    for (const f of ['autogptq', 'autoawq'] as const) {
      const out = path.join(tmp, `hf-${f}`);
      await expect(exportHfQuant(f, lrDir, out)).rejects.toThrowError(expect.objectContaining({ code: 'E_EXPORT_LOWRANK', message: expect.stringContaining('.weight') as unknown }));
      expect(fs.existsSync(out)).toBe(false);
    }
  });
});
