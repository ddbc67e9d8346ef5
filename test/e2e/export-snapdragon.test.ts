/**
 * `edgeq export --target snapdragon`: the bundle of a checkpoint quantized on the Snapdragon grid holds a
 * lossless Q4_0 GGUF, a QNN folder whose encodings validate against the FORMATS.md §3(e) schema with one
 * entry per quantized linear, and a manifest whose every number is recomputed here from the files and the
 * device table.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEVICES } from '../../src/devices/devices.js';
import { GgufFile } from '../../src/formats/gguf/reader.js';
import { validateEncodings } from '../../src/formats/qnn/encodings-schema.js';
import { readModelConfig } from '../../src/model/model-dir.js';
import { runCli } from '../helpers/run-cli.js';

let tmp: string;
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'edgeq-sd-'));
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('edgeq export --target snapdragon', () => {
  it('writes a bundle whose manifest matches its files', async () => {
    const q = path.join(tmp, 'q');
    const qr = await runCli(['quantize', '-m', 'brown-llama-7m', '--method', 'rtn', '--target', 'snapdragon', '-o', q, '--quiet', '--threads', '1']);
    expect(qr.code, qr.stderr).toBe(0);
    const out = path.join(tmp, 'bundle');
    const r = await runCli(['export', '-m', q, '--target', 'snapdragon', '-o', out, '--json', '--threads', '1']);
    expect(r.code, r.stderr).toBe(0);
    const m = JSON.parse(fs.readFileSync(path.join(out, 'manifest.json'), 'utf8'));
    const { config } = readModelConfig(q);

    const ggufPath = path.join(out, m.gguf.file);
    expect(fs.statSync(ggufPath).size).toBe(m.gguf.bytes);
    expect(m.gguf.lossless).toBe(true);
    const g = await GgufFile.open(ggufPath);
    const tensors = g.tensors.map((t) => ({ name: t.name, type: t.type.name, bytes: t.bytes, elements: t.elements }));
    await g.close();
    expect(m.gguf.tensors).toEqual(tensors.map(({ elements: _e, ...t }) => t));
    const linears = tensors.filter((t) => /^blk\.\d+\.(attn_(q|k|v|output)|ffn_(gate|up|down))\.weight$/.test(t.name));
    expect(linears).toHaveLength(config.numLayers * 7);
    expect(new Set(linears.map((t) => t.type))).toEqual(new Set(['Q4_0']));

    const params = tensors.reduce((a, t) => a + t.elements, 0);
    const bytes = tensors.reduce((a, t) => a + t.bytes, 0);
    expect(m.params).toBe(params);
    expect(m.bitsPerWeight).toBeCloseTo((8 * bytes) / params, 12);
    const ctx = Math.min(4096, config.maxPositionEmbeddings);
    const kv = 2 * config.numLayers * config.numKvHeads * config.headDim * ctx * 2;
    expect(m.ctx).toBe(ctx);
    expect(m.kvCacheBytes).toBe(kv);
    expect(m.peakMemoryBytes).toBe(bytes + kv);
    const embd = tensors.find((t) => t.name === 'token_embd.weight')!;
    const perToken = config.tieWordEmbeddings ? bytes : bytes - embd.bytes + embd.bytes / config.vocabSize;
    expect(m.bytesReadPerToken).toBeCloseTo(perToken, 6);
    expect(m.estimates.map((e: { device: string }) => e.device)).toEqual(['snapdragon-8-gen-3', 'snapdragon-x-elite']);
    for (const e of m.estimates) {
      const d = DEVICES.find((x) => x.id === e.device)!;
      expect(e.decodeTokPerSec).toBeCloseTo(d.bandwidth / (perToken + kv), 6);
      expect(e.fitsUsableMemory).toBe(bytes + kv <= d.ramBytes * d.usableFraction);
    }

    const enc = JSON.parse(fs.readFileSync(path.join(out, m.qnn.encodings), 'utf8'));
    expect(validateEncodings(enc)).toEqual([]);
    expect(m.qnn.lpbqWeights + m.qnn.perChannelWeights).toBe(config.numLayers * 7);
    expect(fs.existsSync(path.join(out, 'qnn', 'model.onnx'))).toBe(true);
    const readme = fs.readFileSync(path.join(out, 'README.md'), 'utf8');
    expect(readme).toMatch(/llama-cli -m gguf\/model-q4_0\.gguf/);
    expect(readme).toMatch(/qnn-onnx-converter --input_network qnn\/model\.onnx --quantization_overrides/);
  }, 180_000);
});
