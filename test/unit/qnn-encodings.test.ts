/**
 * The QNN/AIMET encodings export. (1) The 1.0.0 schema validator (written from FORMATS.md §3(e)) accepts
 * the specification's own examples and rejects broken variants. (2) LPBQ: a weight already on an LPBQ grid
 * keeps every integer; any weight moves by at most half an LPBQ step; decoding the JSON entry reproduces
 * dequantizeLpbq. (3) The exported ONNX + encodings of RTN checkpoints (brown-llama-7m g64 sym, stories260K
 * g32 asym with its K = 172 per-channel fallback), read back with protobufjs from a transcription of
 * onnx.proto (independent of edgeq's writer): every encoded name is a tensor of the graph, every quantized
 * weight has exactly one entry, and each entry decodes the float initializer it names to integers in
 * [−8, 7] exactly; activation ranges come from edgeq's forward on calibration tokens.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { f16BitsToF32, f32ToF16Bits } from '../../src/core/dtype.js';
import {
  collectActivationRanges,
  dequantizeLpbq,
  exportQnnOnnx,
  lpbqAsQuantized,
  paramEncoding,
  toLpbq,
  validateEncodings,
  type ParamEncoding,
} from '../../src/formats/qnn/index.js';
import type { MatmulBackend } from '../../src/kernels/backend.js';
import { createWasmBackend } from '../../src/kernels/wasm-backend.js';
import { loadModel } from '../../src/model/load-model.js';
import { readModelConfig } from '../../src/model/model-dir.js';
import { quantizeModel } from '../../src/pipeline/quantize-model.js';
import type { GridSpec } from '../../src/qtypes/types.js';
import { FIXTURE_MODELS } from '../helpers/fixtures.js';
import { decodeEntry, readOnnx } from '../helpers/onnx-read.js';
import { randomQuantized, seededRng } from '../helpers/upstream-unpack.js';

describe('encodings schema (FORMATS.md §3(e))', () => {
  const specExample = {
    version: '1.0.0',
    activation_encodings: [{ name: '20', dtype: 'INT', enc_type: 'PER_TENSOR', bw: 16, is_sym: false, scale: [0.0185], offset: [-114] }],
    param_encodings: [
      { name: 'conv1.weight', dtype: 'INT', enc_type: 'PER_CHANNEL', is_sym: true, bw: 8, scale: [0.01, 0.02], offset: [-128, -128] },
      { name: 'fc.weight', dtype: 'INT', enc_type: 'LPBQ', is_sym: true, bw: 8, compressed_bw: 4, block_size: 64, scale: [0.001, 0.002], per_block_int_scale: [16, 3, 1, 16], offset: [-128, -128] },
    ],
    quantizer_args: { activation_bitwidth: 16, param_bitwidth: 8, dtype: 'int', is_symmetric: true, per_channel_quantization: true, quant_scheme: 'min_max' },
    excluded_layers: [],
  };
  it("accepts the specification's examples", () => {
    expect(validateEncodings(specExample)).toEqual([]);
    expect(validateEncodings({ version: '1.0.0', activation_encodings: [{ name: 'x', dtype: 'FLOAT', bw: 16 }], param_encodings: [] })).toEqual([]);
  });
  it('rejects broken variants, naming the field', () => {
    const broken = (mutate: (j: any) => void): string[] => {
      const j = structuredClone(specExample) as any;
      mutate(j);
      return validateEncodings(j);
    };
    expect(broken((j) => (j.version = '0.6.1'))[0]).toMatch(/^version/);
    expect(broken((j) => (j.param_encodings[0].is_sym = 'True'))[0]).toMatch(/is_sym/);
    expect(broken((j) => (j.param_encodings[1].per_block_int_scale[0] = 17))[0]).toMatch(/per_block_int_scale\[0\]/);
    expect(broken((j) => j.param_encodings[1].per_block_int_scale.pop())[0]).toMatch(/whole number of blocks/);
    expect(broken((j) => (j.param_encodings[0].offset = [-128]))[0]).toMatch(/scale has 2 entries but offset has 1/);
    expect(broken((j) => (j.param_encodings[0].offset = [-127, -128]))[0]).toMatch(/symmetric 8-bit/);
    expect(broken((j) => (j.activation_encodings[0].scale = [0]))[0]).toMatch(/positive/);
    expect(broken((j) => j.param_encodings.push(j.param_encodings[0]))[0]).toMatch(/duplicate/);
    expect(broken((j) => (j.activation_encodings = {}))[0]).toMatch(/list format/);
  });
});

describe('LPBQ grid', () => {
  it('a weight already on an LPBQ grid keeps every integer (sameIntegers 1, zero error)', () => {
    const rnd = seededRng(3);
    const n = 8;
    const k = 256;
    const q = randomQuantized({ n, k, bits: 4, groupSize: 64, sym: true, seed: 9 });
    for (let r = 0; r < n; r++) {
      const S = f16BitsToF32(f32ToF16Bits(1e-3 + rnd() * 1e-2));
      for (let g = 0; g < q.numGroups; g++) q.scales[r * q.numGroups + g] = Math.fround(S * (g === 1 ? 16 : 1 + Math.floor(rnd() * 16)));
    }
    const fit = toLpbq(q, 64);
    expect(fit.sameIntegers).toBe(1);
    expect(fit.relError).toBe(0);
  });

  for (const grid of [
    { groupSize: 64, sym: true, block: 64 },
    { groupSize: 128, sym: false, block: 64 },
    { groupSize: -1, sym: false, block: 96 }, // whole row = per channel
  ]) {
    it(`re-expression error bounded; the JSON entry decodes to the same weights (g${grid.groupSize} ${grid.sym ? 'sym' : 'asym'} → block ${grid.block})`, () => {
      const q = randomQuantized({ n: 6, k: 96 * (grid.block === 96 ? 1 : 2), bits: 4, groupSize: grid.groupSize, sym: grid.sym, seed: 11 });
      for (let i = 0; i < q.scales.length; i++) q.scales[i] = Math.abs(q.scales[i]) + 1e-3;
      const block = grid.block === 96 ? q.k : grid.block;
      const fit = toLpbq(q, block);
      const up = toLpbq(q, block, 'w', 'up');
      expect(up.maxStepError).toBeLessThanOrEqual(0.5 + 1e-6); // rounding the multiplier up never clips
      expect(fit.relError).toBeGreaterThan(0);
      expect(fit.relError).toBeLessThanOrEqual(up.relError); // the MSE choice is never worse overall
      expect(fit.lpbq.q.every((v) => v >= -8 && v <= 7)).toBe(true);
      const w = dequantizeLpbq(fit.lpbq);
      // [K, N] as the ONNX initializer
      const wt = new Float32Array(q.k * q.n);
      for (let r = 0; r < q.n; r++) for (let c = 0; c < q.k; c++) wt[c * q.n + r] = w[r * q.k + c];
      const entry = paramEncoding('w', fit.lpbq);
      expect(entry.enc_type).toBe(block === q.k ? 'PER_CHANNEL' : 'LPBQ');
      const { ints, maxFrac } = decodeEntry(entry, wt, q.k, q.n);
      expect(maxFrac).toBe(0);
      for (let r = 0; r < q.n; r++) for (let c = 0; c < q.k; c++) expect(ints[c * q.n + r]).toBe(fit.lpbq.q[r * q.k + c]);
    });
  }
});

describe('ONNX + encodings export of quantized checkpoints', () => {
  let tmp: string;
  let backend: MatmulBackend;
  beforeAll(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'edgeq-qnn-'));
    backend = await createWasmBackend({ threads: 1 });
  });
  afterAll(async () => {
    await backend?.dispose();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  async function rtn(model: string, name: string, grid: GridSpec): Promise<string> {
    const { config } = readModelConfig(model);
    const outDir = path.join(tmp, name);
    await quantizeModel({ method: 'rtn', grid, fallback: true, denseDtype: 'F32', calib: { samples: 1, seqLen: 16 }, modelDir: model, config, outDir, calibration: null, backend, edgeqVersion: 'test' });
    return outDir;
  }

  for (const c of [
    { label: 'brown-llama-7m int4 g64 sym', model: FIXTURE_MODELS.brownLlama7m, grid: { bits: 4, groupSize: 64, sym: true } as GridSpec },
    { label: 'stories260K int4 g32 asym', model: FIXTURE_MODELS.stories260K, grid: { bits: 4, groupSize: 32, sym: false } as GridSpec },
  ]) {
    it(`${c.label}: names exist in the graph, one entry per quantized weight, entries decode the initializers`, async () => {
      const ckpt = await rtn(c.model, c.label.replace(/\W+/g, '-'), c.grid);
      const { config } = readModelConfig(ckpt);
      const model = await loadModel(ckpt, backend, { quantized: 'dequantized' });
      const rnd = seededRng(5);
      const calib = Array.from({ length: 3 }, () => Array.from({ length: 24 }, () => 3 + Math.floor(rnd() * (config.vocabSize - 3))));
      const ranges = collectActivationRanges(model, calib);
      model.dispose();
      const out = path.join(tmp, `${c.label.replace(/\W+/g, '-')}-qnn`);
      const res = await exportQnnOnnx({ modelDir: ckpt, outDir: out, activationRanges: ranges });
      const json = JSON.parse(fs.readFileSync(res.encodingsFile, 'utf8'));
      expect(validateEncodings(json)).toEqual([]);

      const { graph, initializerF32 } = readOnnx(out);
      const tensors = new Set([...graph.initializer.map((t) => t.name), ...graph.node.flatMap((n) => n.output ?? []), ...graph.input.map((i) => i.name)]);
      for (const e of [...json.activation_encodings, ...json.param_encodings]) expect(tensors.has(e.name), e.name).toBe(true);
      expect(graph.node.some((n) => n.op_type === 'MatMulNBits')).toBe(false);
      // activations: embedding, 5 taps per block, final norm, logits — each once
      expect(json.activation_encodings).toHaveLength(3 + 5 * config.numLayers);
      for (const a of json.activation_encodings) {
        const lo = a.offset[0] * a.scale[0];
        const hi = (a.offset[0] + 65535) * a.scale[0];
        expect(lo).toBeLessThanOrEqual(0);
        expect(hi).toBeGreaterThan(0);
      }
      // params: exactly the quantized linears, each once
      const quantized = 7 * config.numLayers;
      expect(json.param_encodings).toHaveLength(quantized);
      expect(new Set(json.param_encodings.map((e: ParamEncoding) => e.name)).size).toBe(quantized);
      let same = 0;
      for (const e of json.param_encodings as ParamEncoding[]) {
        const init = graph.initializer.find((t) => t.name === e.name)!;
        const [K, N] = init.dims.map(Number);
        const { ints, maxFrac } = decodeEntry(e, initializerF32(e.name), K, N);
        expect(maxFrac).toBe(0); // the float initializer is exactly integers × the stated scales
        expect(ints.every((v) => v >= -8 && v <= 7)).toBe(true);
        const report = res.weights.find((w) => w.initializer === e.name)!;
        expect(report.relError).toBeLessThan(0.2);
        same += report.sameIntegers;
      }
      const downK = config.intermediateSize;
      const down = json.param_encodings.filter((e: ParamEncoding) => e.name.includes('down_proj'));
      expect(down.every((e: ParamEncoding) => e.enc_type === (downK % 32 === 0 ? 'LPBQ' : 'PER_CHANNEL'))).toBe(true);
      console.log(
        `${c.label}: ${json.param_encodings.length} param + ${json.activation_encodings.length} activation encodings; ` +
          `integers identical to edgeq's: ${((100 * same) / quantized).toFixed(1)}% (sym only); ` +
          `max LPBQ re-expression rel error ${Math.max(...res.weights.map((w) => w.relError)).toExponential(2)}`,
      );
    });
  }
});


