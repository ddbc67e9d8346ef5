/**
 * AWQ as a block transform, on a synthetic Llama block (hidden 64, 4 heads, ffn 128, seeded random weights)
 * whose calibration activations carry a few large-magnitude input channels — the situation AWQ is for:
 *   - the scale search picks α > 0 for every smoothing mapping;
 *   - AWQ-transformed-then-RTN weights give a lower block-output MSE than plain RTN (full block outputs
 *     through llamaBlockForward, fp vs quantized weights);
 *   - the scale folding alone (no clipping, no quantization) leaves the fp block output unchanged.
 */
import { describe, expect, it } from 'vitest';
import { parseModelConfig } from '../../src/arch/registry.js';
import { LLAMA_LINEARS, type LinearRole } from '../../src/arch/llama-tensors.js';
import { createScalarBackend } from '../../src/kernels/scalar-backend.js';
import { BlockRunner, CalibActivations } from '../../src/pipeline/activations.js';
import { freeBlockWeights, toBlockWeights, type BlockF32 } from '../../src/pipeline/block-weights.js';
import { quantizeRtnFake } from '../../src/pipeline/fake-quant.js';
import { awqTransformBlock } from '../../src/quantizers/awq.js';
import type { GridSpec } from '../../src/qtypes/types.js';
import { maxErrorOverRms } from '../helpers/compare-arrays.js';
import { seededRng } from '../helpers/upstream-unpack.js';

const config = parseModelConfig({
  architectures: ['LlamaForCausalLM'],
  model_type: 'llama',
  hidden_size: 64,
  intermediate_size: 128,
  num_hidden_layers: 1,
  num_attention_heads: 4,
  num_key_value_heads: 4, // MHA, so the v_proj→o_proj mapping exists too
  vocab_size: 32,
  max_position_embeddings: 64,
  rms_norm_eps: 1e-5,
  rope_theta: 10000,
  hidden_act: 'silu',
  tie_word_embeddings: true,
});
const backend = createScalarBackend();
const GRID: GridSpec = { bits: 3, groupSize: 32, sym: false };
const N_SEQ = 6;
const T = 32;
const D = config.hiddenSize;

function gaussian(rnd: () => number): () => number {
  return () => Math.sqrt(-2 * Math.log(1 - rnd())) * Math.cos(2 * Math.PI * rnd());
}

/** Random block: weights N(0, 1/k); a few rows of v_proj and up_proj are large, so o_proj's and
 * down_proj's inputs get outlier channels too (not only the residual stream). */
function makeBlock(seed: number): BlockF32 {
  const g = gaussian(seededRng(seed));
  const linears = {} as BlockF32['linears'];
  for (const spec of LLAMA_LINEARS) {
    const [n, k] = spec.shape(config);
    const w = Float32Array.from({ length: n * k }, () => g() / Math.sqrt(k));
    linears[spec.role] = { w, n, k, bias: null };
  }
  const boostRows = (role: LinearRole, rows: number[], f: number): void => {
    const l = linears[role];
    for (const r of rows) for (let c = 0; c < l.k; c++) l.w[r * l.k + c]! *= f;
  };
  boostRows('v_proj', [3, 17, 40], 12);
  boostRows('up_proj', [5, 60, 99], 12);
  const norm = () => Float32Array.from({ length: D }, () => 1 + 0.1 * g());
  return { layer: 0, inputNorm: norm(), postNorm: norm(), linears };
}

/** Residual-stream activations with outlier channels 7, 23, 51 (×25). */
function makeActs(seed: number): CalibActivations {
  const g = gaussian(seededRng(seed));
  const a = new CalibActivations(N_SEQ, T, D);
  for (let i = 0; i < a.data.length; i++) {
    const ch = i % D;
    a.data[i] = g() * (ch === 7 || ch === 23 || ch === 51 ? 25 : 1);
  }
  return a;
}

function cloneBlock(b: BlockF32): BlockF32 {
  const linears = {} as BlockF32['linears'];
  for (const [role, l] of Object.entries(b.linears)) linears[role as LinearRole] = { ...l, w: l.w.slice(), bias: l.bias?.slice() ?? null };
  return { layer: b.layer, inputNorm: b.inputNorm.slice(), postNorm: b.postNorm.slice(), linears };
}

/** Block output (N, T, d) for the given weights. */
function blockOutput(b: BlockF32, acts: CalibActivations): Float32Array {
  const out = acts.clone();
  const w = toBlockWeights(backend, b);
  try {
    new BlockRunner(config, backend, T).run(w, out, { propagate: true });
  } finally {
    freeBlockWeights(w);
  }
  return out.data;
}

function rtnAll(b: BlockF32): BlockF32 {
  const q = cloneBlock(b);
  for (const l of Object.values(q.linears)) l.w = quantizeRtnFake(l.w, l.n, l.k, GRID);
  return q;
}

const mse = (a: Float32Array, b: Float32Array): number => {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += (a[i]! - b[i]!) ** 2;
  return s / a.length;
};

const awqOpts = (clip: boolean) => ({ gridFor: () => GRID, fakeQuant: quantizeRtnFake, backend, clip });

describe('awqTransformBlock on a synthetic block with outlier channels', () => {
  const block = makeBlock(11);
  const acts = makeActs(12);
  const ref = blockOutput(block, acts);

  it('picks α > 0 for every mapping and beats plain RTN on the block output', () => {
    const transformed = cloneBlock(block);
    const reports = awqTransformBlock(config, transformed, acts, awqOpts(true));
    expect(reports.map((r) => r.mapping)).toHaveLength(4);
    for (const r of reports) {
      expect(r.alpha, r.mapping).toBeGreaterThan(0);
      expect(r.mseBest, r.mapping).toBeLessThan(r.mseNoScale);
    }
    const mseRtn = mse(blockOutput(rtnAll(block), acts), ref);
    const mseAwq = mse(blockOutput(rtnAll(transformed), acts), ref);
    expect(Number.isFinite(mseAwq)).toBe(true);
    expect(mseAwq).toBeLessThan(mseRtn);
  });

  it('the scale folding alone leaves the fp block output unchanged (up to float error)', () => {
    const transformed = cloneBlock(block);
    const reports = awqTransformBlock(config, transformed, acts, awqOpts(false));
    expect(reports.some((r) => r.alpha > 0)).toBe(true);
    // the weights really changed ...
    expect(mse(transformed.linears.q_proj.w, block.linears.q_proj.w)).toBeGreaterThan(0);
    expect(mse(transformed.inputNorm, block.inputNorm)).toBeGreaterThan(0);
    // ... but the function did not
    expect(maxErrorOverRms(blockOutput(transformed, acts), ref)).toBeLessThan(1e-4);
  });
});

describe('awqTransformBlock with unquantized linears (a ladder\'s fp16 or low-rank rungs: grid null)', () => {
  const block = makeBlock(21);
  const acts = makeActs(22);
  const ref = blockOutput(block, acts);
  const optsWith = (dense: LinearRole[], clip: boolean) => ({ ...awqOpts(clip), gridFor: (r: LinearRole) => (dense.includes(r) ? null : GRID) });
  /** RTN on the quantized linears only; the dense ones keep their (transformed) fp weights. */
  const rtnSome = (b: BlockF32, dense: LinearRole[]): BlockF32 => {
    const q = cloneBlock(b);
    for (const [role, l] of Object.entries(q.linears)) if (!dense.includes(role as LinearRole)) l.w = quantizeRtnFake(l.w, l.n, l.k, GRID);
    return q;
  };

  it('a mapping whose balance linears are all unquantized keeps s = 1 and leaves them untouched', () => {
    const dense: LinearRole[] = ['q_proj', 'k_proj', 'v_proj', 'o_proj'];
    const transformed = cloneBlock(block);
    const reports = awqTransformBlock(config, transformed, acts, optsWith(dense, true));
    const by = new Map(reports.map((r) => [r.mapping, r]));
    expect(by.get('input_layernorm→q,k,v')!.alpha).toBeNull();
    expect(by.get('v_proj→o_proj')!.alpha).toBeNull();
    expect(by.get('post_attention_layernorm→gate,up')!.alpha).toBeGreaterThan(0);
    expect(by.get('up_proj→down_proj')!.alpha).toBeGreaterThan(0);
    // nothing folded into the attention half, and no clipping of its dense linears
    expect(transformed.inputNorm).toEqual(block.inputNorm);
    for (const r of dense) expect(transformed.linears[r].w, r).toEqual(block.linears[r].w);
    expect(mse(transformed.linears.down_proj.w, block.linears.down_proj.w)).toBeGreaterThan(0);
  });

  it('an unquantized linear takes the scales exactly and is never clipped; the rest still beats RTN', () => {
    const dense: LinearRole[] = ['v_proj', 'up_proj'];
    const clipped = cloneBlock(block);
    const unclipped = cloneBlock(block);
    awqTransformBlock(config, clipped, acts, optsWith(dense, true));
    awqTransformBlock(config, unclipped, acts, optsWith(dense, false));
    // the scale search is the same with and without clipping, so the dense linears come out identical …
    for (const r of dense) expect(clipped.linears[r].w, r).toEqual(unclipped.linears[r].w);
    // … while the quantized ones were clipped
    expect(mse(clipped.linears.o_proj.w, unclipped.linears.o_proj.w)).toBeGreaterThan(0);
    // folding alone (no clip) keeps the fp function, dense linears included
    expect(maxErrorOverRms(blockOutput(unclipped, acts), ref)).toBeLessThan(1e-4);
    // and quantizing the others after AWQ beats quantizing them plainly
    expect(mse(blockOutput(rtnSome(clipped, dense), acts), ref)).toBeLessThan(mse(blockOutput(rtnSome(block, dense), acts), ref));
  });
});
