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
import type { MatmulBackend } from '../../src/kernels/backend.js';
import { createScalarBackend } from '../../src/kernels/scalar-backend.js';
import { createWasmBackend } from '../../src/kernels/wasm-backend.js';
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
    expect(diff).toBeLessThan(2e-4);
    expect(Math.abs(windowNll(a, ids, ref.config.vocabSize) - windowNll(b, ids, ref.config.vocabSize))).toBeLessThan(1e-5);
  });
});

/** Mean NLL over `windows` consecutive windows of ctx−1 tokens with BOS prepended (edgeq's protocol). */
async function perplexityOf(nllOf: (ids: number[]) => Promise<number>, tokens: number[], bos: number, ctx: number, windows: number): Promise<{ ppl: number; nll: number[] }> {
  const nll: number[] = [];
  for (let w = 0; w < windows; w++) {
    const ids = [bos, ...tokens.slice(w * (ctx - 1), (w + 1) * (ctx - 1))];
    nll.push(await nllOf(ids));
  }
  return { ppl: Math.exp(nll.reduce((a, b) => a + b, 0) / nll.length), nll };
}

describe('brown-llama-7m → GGUF F16 / Q8_0 / Q4_0 in llama.cpp vs edgeq\'s core on the same weights', () => {
  const dir = BUNDLED.models['brown-llama-7m']!;
  const { config } = readModelConfig(dir);
  const CTX = 256; // the foundation's perplexity protocol (bench:gguf-ppl runs the whole text)
  const WINDOWS = 16;
  let backend: MatmulBackend;
  let tokens: number[];
  let bos: number;
  let fp32: LlamaModel;
  let basePpl: number;

  beforeAll(async () => {
    backend = await createWasmBackend({ threads: 1 });
    const tok = EdgeqTokenizer.load(dir, config.bosTokenId, config.eosTokenIds);
    bos = tok.bosId!;
    tokens = tok.encode(readEvalText(BUNDLED.datasets.wikitext2!).slice(0, 40000));
    expect(tokens.length).toBeGreaterThan(WINDOWS * (CTX - 1));
    fp32 = await loadModel(dir, backend);
    basePpl = (await perplexityOf(async (ids) => windowNll(edgeqLogits(fp32, ids), ids, config.vocabSize), tokens, bos, CTX, WINDOWS)).ppl;
  }, 120_000);
  afterAll(async () => {
    fp32?.dispose();
    await backend?.dispose();
  });

  it.each(['f16', 'q8_0', 'q4_0'] as const)('%s: llama.cpp perplexity within 0.5 percent of edgeq on the GGUF weights (16 windows, ctx 256)', async (type) => {
    const file = path.join(tmp, `brown-${type}.gguf`);
    await exportGguf({ modelDir: dir, out: file, type });
    const same = await loadGgufAsModel(file, config, backend);
    const lc = await LlamaCppModel.load(file, config.vocabSize);
    try {
      const V = config.vocabSize;
      const t0 = performance.now();
      const mine = await perplexityOf(async (ids) => windowNll(edgeqLogits(same, ids), ids, V), tokens, bos, CTX, WINDOWS);
      const t1 = performance.now();
      const theirs = await perplexityOf((ids) => lc.windowNll(ids), tokens, bos, CTX, WINDOWS);
      const t2 = performance.now();
      console.log(`timing: edgeq ${(t1 - t0).toFixed(0)} ms, llama.cpp ${(t2 - t1).toFixed(0)} ms`);
      const rel = Math.abs(theirs.ppl / mine.ppl - 1);
      // logits on one window: llama.cpp vs edgeq on the same weights, and vs the fp32 model
      const ids = [bos, ...tokens.slice(0, CTX - 1)];
      const a = edgeqLogits(same, ids);
      const b = await lc.logits(ids);
      const c = edgeqLogits(fp32, ids);
      console.log(
        `brown-llama-7m ${type}: ppl llama.cpp ${theirs.ppl.toFixed(4)} · edgeq same weights ${mine.ppl.toFixed(4)} (Δ ${(100 * rel).toFixed(3)} %) · edgeq fp32 ${basePpl.toFixed(4)}; ` +
          `max |Δlogit| llama.cpp vs edgeq-same ${maxAbsDiff(a, b).toExponential(2)}, vs fp32 ${maxAbsDiff(b, c).toExponential(2)}`,
      );
      expect(rel).toBeLessThan(0.005);
      if (type === 'f16') {
        expect(maxAbsDiff(a, b)).toBeLessThan(0.05);
        // greedy agreement: at every position both pick the same argmax (teacher-forced greedy decode)
        const greedy: number[] = [bos, ...tokens.slice(0, 8)];
        const cache = same.createCache(64);
        let logits = same.forward(greedy, cache, 'last')!;
        for (let i = 0; i < 24; i++) {
          const next = argmax(logits, 0, V);
          greedy.push(next);
          logits = same.forward([next], cache, 'last')!;
        }
        const lcl = await lc.logits(greedy);
        for (let i = 8; i < greedy.length - 1; i++) expect(argmax(lcl, i * V, V), `position ${i}`).toBe(greedy[i + 1]);
      }
      if (type !== 'f16') {
        // llama.cpp quantizes activations to Q8_0 for its Q8_0/Q4_0 dot products: close, not exact
        expect(maxAbsDiff(a, b)).toBeLessThan(0.25);
      }
      if (type === 'q4_0') {
        // loose: quantization moves the logits, but not wildly; ppl within 25 % of fp32
        expect(theirs.ppl / basePpl).toBeLessThan(1.25);
        expect(maxAbsDiff(b, c)).toBeLessThan(4);
      }
    } finally {
      await lc.dispose();
      same.dispose();
    }
  }, 300_000);
});

function argmax(x: Float32Array, off: number, n: number): number {
  let best = 0;
  for (let i = 1; i < n; i++) if (x[off + i]! > x[off + best]!) best = i;
  return best;
}

describe('stories260K → GGUF q4_k with per-tensor fallbacks (Q4_0 for width 64, F16 for 172, Q8_0 tied output)', () => {
  it('loads in llama.cpp and its perplexity is within 0.5 % of edgeq on the same weights', async () => {
    const dir = BUNDLED.models.stories260K!;
    const { config } = readModelConfig(dir);
    const file = path.join(tmp, 'stories-q4k.gguf');
    const r = await exportGguf({ modelDir: dir, out: file, type: 'q4_k' });
    expect(new Set(r.tensors.map((t) => t.type))).toEqual(new Set(['F32', 'Q4_0', 'F16', 'Q8_0']));
    const backend = createScalarBackend();
    const same = await loadGgufAsModel(file, config, backend);
    const lc = await LlamaCppModel.load(file, config.vocabSize);
    try {
      const tok = EdgeqTokenizer.load(dir, config.bosTokenId, config.eosTokenIds);
      const tokens = tok.encode(text);
      const mine = await perplexityOf(async (ids) => windowNll(edgeqLogits(same, ids), ids, config.vocabSize), tokens, tok.bosId!, 64, 8);
      const theirs = await perplexityOf((ids) => lc.windowNll(ids), tokens, tok.bosId!, 64, 8);
      console.log(`stories260K q4_k mix: ppl llama.cpp ${theirs.ppl.toFixed(4)} · edgeq same weights ${mine.ppl.toFixed(4)}`);
      expect(Math.abs(theirs.ppl / mine.ppl - 1)).toBeLessThan(0.005);
    } finally {
      await lc.dispose();
      same.dispose();
    }
  }, 120_000);
});

describe('rope scaling in the GGUF (llama3 → rope_freqs.weight, linear → llama.rope.scaling.*)', () => {
  it.each([
    // a short original context so that every llama3 frequency band (kept, scaled, smoothed) occurs in head_dim 64
    { kind: 'llama3', scaling: { rope_type: 'llama3', factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 64 } },
    { kind: 'linear', scaling: { type: 'linear', factor: 4 } },
  ])('a brown-llama-7m with $kind rope scaling gives the same logits in llama.cpp as in edgeq', async ({ kind, scaling }) => {
    const src = BUNDLED.models['brown-llama-7m']!;
    const dir = path.join(tmp, `brown-${kind}-rope`);
    fs.mkdirSync(dir);
    for (const f of ['model.safetensors', 'tokenizer.json', 'tokenizer_config.json', 'generation_config.json']) fs.symlinkSync(path.join(src, f), path.join(dir, f));
    const cfg = JSON.parse(fs.readFileSync(path.join(src, 'config.json'), 'utf8'));
    cfg.rope_scaling = scaling;
    fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(cfg));
    const file = path.join(tmp, `brown-${kind}.gguf`);
    const r = await exportGguf({ modelDir: dir, out: file, type: 'f32' });
    expect(r.tensors.some((t) => t.name === 'rope_freqs.weight')).toBe(kind === 'llama3');
    const { config } = readModelConfig(dir);
    const ref = await loadModel(dir, createScalarBackend());
    const lc = await LlamaCppModel.load(file, config.vocabSize);
    try {
      const tok = EdgeqTokenizer.load(dir, config.bosTokenId, config.eosTokenIds);
      const ids = [tok.bosId!, ...tok.encode(text).slice(0, 95)];
      const a = edgeqLogits(ref, ids);
      const b = await lc.logits(ids);
      const unscaled = edgeqLogits(await loadModel(src, createScalarBackend()), ids);
      console.log(`${kind} rope: max |Δlogit| ${maxAbsDiff(a, b).toExponential(2)} (vs the unscaled model ${maxAbsDiff(a, unscaled).toExponential(2)})`);
      expect(maxAbsDiff(a, unscaled)).toBeGreaterThan(0.1); // the scaling matters at these positions
      expect(maxAbsDiff(a, b)).toBeLessThan(2e-4);
    } finally {
      await lc.dispose();
    }
  }, 120_000);
});
