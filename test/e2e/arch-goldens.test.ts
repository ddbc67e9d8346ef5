/**
 * Architecture variants the real fixtures do not cover (qwen2 biases, mistral, head_dim override + bf16,
 * llama3 rope scaling + fp16, llama attention/MLP biases) against float64 PyTorch goldens written by
 * scripts/make_arch_goldens.py: logits within 1e-3, per-position argmax, 8 greedy tokens.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { generateGreedy } from '../../src/infer/generate.js';
import { argmax } from '../../src/infer/ops.js';
import { createWasmBackend } from '../../src/kernels/wasm-backend.js';
import { loadModel } from '../../src/model/load-model.js';
import { REPO_ROOT } from '../helpers/fixtures.js';
import { maxAbsDiff } from '../helpers/reference.js';

const ROOT = path.join(REPO_ROOT, 'test/fixtures/arch');
const variants = fs.readdirSync(ROOT).filter((d) => fs.existsSync(path.join(ROOT, d, 'golden.json')));

interface GoldenPrompt {
  ids: number[];
  logits_offset_floats: number;
  logits_shape: [number, number];
  argmax: number[];
  greedy_8: number[];
}

const backendP = createWasmBackend({ threads: 2 });
afterAll(async () => (await backendP).dispose());

describe('architecture goldens', () => {
  it('covers the five variants', () => {
    expect(variants.sort()).toEqual(['llama-bias', 'llama-headdim-bf16', 'llama3-rope-fp16', 'mistral', 'qwen2']);
  });

  it.each(variants)('%s matches the float64 reference', async (variant) => {
    const dir = path.join(ROOT, variant);
    const golden = JSON.parse(fs.readFileSync(path.join(dir, 'golden.json'), 'utf8')) as { prompts: GoldenPrompt[] };
    const buf = fs.readFileSync(path.join(dir, 'golden.logits.f32'));
    const ref = new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
    const model = await loadModel(dir, await backendP);
    for (const p of golden.prompts) {
      const [T, V] = p.logits_shape;
      const logits = model.forward(p.ids, model.createCache(T), 'all')!;
      expect(maxAbsDiff(logits, ref.subarray(p.logits_offset_floats, p.logits_offset_floats + T * V))).toBeLessThan(1e-3);
      expect(Array.from({ length: T }, (_, t) => argmax(logits, t * V, V))).toEqual(p.argmax);
      expect(generateGreedy(model, p.ids, { maxNewTokens: 8 })).toEqual(p.greedy_8);
    }
    model.dispose();
  });
});
