/**
 * `edgeq plan`: candidate sizes are the tensor bytes `edgeq quantize` really writes (brown-llama-7m, RTN,
 * every integer candidate) and fp16 is the fp16 checkpoint's tensor bytes; on the Llama-3.2-1B shape it
 * plans from config.json alone (no weights, nothing quantized) with sizes recomputed here from first
 * principles; the KV cache and the roofline follow their definitions.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SafetensorsFile } from '../../src/formats/safetensors/reader.js';
import { buildCandidates, fitOnDevice, INT_CANDIDATES, kvCacheBytes } from '../../src/devices/device-plan.js';
import { KvCache } from '../../src/infer/kv-cache.js';
import { readModelConfig } from '../../src/model/model-dir.js';
import { FIXTURE_MODELS } from '../helpers/fixtures.js';
import { runCli } from '../helpers/run-cli.js';

let tmp: string;
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'edgeq-plan-'));
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

async function tensorBytes(file: string): Promise<number> {
  const f = await SafetensorsFile.open(file);
  try {
    return [...f.tensors.values()].reduce((a, t) => a + t.byteLength, 0);
  } finally {
    await f.close();
  }
}

describe('edgeq plan', () => {
  it('sizes equal the bytes quantize writes (brown-llama-7m)', async () => {
    const run = await runCli(['plan', '--model', 'brown-llama-7m', '--device', 'raspberry-pi-5', '--json']);
    expect(run.code).toBe(0);
    const plan = JSON.parse(run.stdout);
    const byId = new Map(plan.candidates.map((c: { id: string }) => [c.id, c]));
    expect((byId.get('fp16') as { bytes: number }).bytes).toBe(await tensorBytes(path.join(FIXTURE_MODELS.brownLlama7m, 'model.safetensors')));
    for (const spec of INT_CANDIDATES) {
      if (!spec.grid) continue;
      const out = path.join(tmp, spec.id);
      const g = spec.grid;
      const args = ['quantize', '-m', 'brown-llama-7m', '--method', 'rtn', '--bits', String(g.bits), '-g', String(g.groupSize), g.sym ? '--sym' : '--asym', '--fallback', '-o', out, '--quiet', '--threads', '1'];
      const q = await runCli(args);
      expect(q.code, q.stderr).toBe(0);
      expect((byId.get(spec.id) as { bytes: number }).bytes, spec.id).toBe(await tensorBytes(path.join(out, 'model.safetensors')));
    }
    const rpi = plan.devices[0];
    expect(rpi.id).toBe('raspberry-pi-5');
    expect(rpi.fits).toHaveLength(plan.candidates.length);
  }, 180_000);

  it('plans Llama-3.2-1B shapes from config.json alone', async () => {
    const dir = path.join(tmp, 'llama-1b-config-only');
    fs.mkdirSync(dir);
    const preset = JSON.parse(fs.readFileSync(path.resolve('presets/synthetic-models.json'), 'utf8'))['llama-3.2-1b'];
    fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify({ architectures: ['LlamaForCausalLM'], ...preset.config }));
    const run = await runCli(['plan', '--model', dir, '--device', 'snapdragon-8-gen-3', 'apple-a17-pro', '--ctx', '4096', '--json']);
    expect(run.code, run.stderr).toBe(0);
    const plan = JSON.parse(run.stdout);
    const c = preset.config;
    const hd = c.head_dim;
    // block linears: q, k, v, o, gate, up, down
    const shapes = [
      [c.num_attention_heads * hd, c.hidden_size],
      [c.num_key_value_heads * hd, c.hidden_size],
      [c.num_key_value_heads * hd, c.hidden_size],
      [c.hidden_size, c.num_attention_heads * hd],
      [c.intermediate_size, c.hidden_size],
      [c.intermediate_size, c.hidden_size],
      [c.hidden_size, c.intermediate_size],
    ];
    let int4 = 0;
    let linParams = 0;
    for (const [n, k] of shapes) {
      int4 += n * (k / 2) + n * (k / 128) * 3; // 4-bit codes + fp16 scale + uint8 zero per group of 128
      linParams += n * k;
    }
    const L = c.num_hidden_layers;
    const dense = c.vocab_size * c.hidden_size * 2 + (2 * L + 1) * c.hidden_size * 4; // tied fp16 embedding, F32 norms
    const cand = plan.candidates.find((x: { id: string }) => x.id === 'int4-g128');
    expect(cand.bytes).toBe(L * int4 + dense);
    const params = L * linParams + c.vocab_size * c.hidden_size + (2 * L + 1) * c.hidden_size;
    expect(plan.candidates.find((x: { id: string }) => x.id === 'fp16').bytes).toBe(2 * params);
    const kv = 2 * L * c.num_key_value_heads * hd * 4096 * 2;
    const sd = plan.devices.find((d: { id: string }) => d.id === 'snapdragon-8-gen-3');
    const f = sd.fits.find((x: { candidate: string }) => x.candidate === 'int4-g128');
    expect(f.kvBytes).toBe(kv);
    expect(f.tokPerSec).toBeCloseTo(sd.bandwidth / (cand.bytesPerToken + kv), 9);
    expect(f.fits).toBe(cand.bytes + kv <= sd.ramBytes * sd.usableFraction);
    expect(plan.devices.map((d: { id: string }) => d.id)).toEqual(['snapdragon-8-gen-3', 'apple-a17-pro']);
  });

  it('KV bytes match the runtime cache; fit and real-time follow their definitions', () => {
    const { config } = readModelConfig(FIXTURE_MODELS.stories260K);
    expect(kvCacheBytes(config, 77, 4)).toBe(new KvCache(config.numLayers, config.numKvHeads, config.headDim, 77).bytes);
    const cands = buildCandidates(config);
    const kv = kvCacheBytes(config, 64);
    const int4 = cands.find((c) => c.id === 'int4-g128')!;
    const [justFits] = fitOnDevice([int4], config, 64, int4.bytes + kv, 1e9);
    const [tooBig] = fitOnDevice([int4], config, 64, int4.bytes + kv - 1, 1e9);
    expect(justFits.fits).toBe(true);
    expect(tooBig.fits).toBe(false);
    const [slow] = fitOnDevice([int4], config, 64, 1e12, 3.2 * (int4.bytesPerToken + kv));
    const [fast] = fitOnDevice([int4], config, 64, 1e12, 3.4 * (int4.bytesPerToken + kv));
    expect(slow.realTime).toBe(false);
    expect(fast.realTime).toBe(true);
  });

  it('this-machine: measured bandwidth and decode printed beside the estimate', async () => {
    const run = await runCli(['plan', '--model', 'stories260K', '--device', 'this-machine', '--ctx', '256', '--json', '--threads', '1']);
    expect(run.code, run.stderr).toBe(0);
    const plan = JSON.parse(run.stdout);
    const host = plan.devices[0];
    expect(host.id).toBe('this-machine');
    expect(host.bandwidth).toBeGreaterThan(1e8);
    expect(host.measured.decodeTokPerSec).toBeGreaterThan(0);
    expect(host.measured.ratio).toBeCloseTo(host.measured.decodeTokPerSec / host.measured.rooflineTokPerSec, 9);
    const text = await runCli(['plan', '--model', 'stories260K', '--device', 'this-machine', '--ctx', '256', '--threads', '1']);
    expect(text.stdout).toMatch(/measured on edgeq's core .* decode [\d.]+ tok\/s \(tg128\) vs its roofline/);
  });

  it('unknown devices are refused with the list', async () => {
    const run = await runCli(['plan', '--model', 'stories260K', '--device', 'pixel-99']);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/unknown device 'pixel-99'/);
    expect(run.stderr).toMatch(/raspberry-pi-5/);
  });
});
