/**
 * AWQ's additions beyond AutoAWQ (src/quantizers/awq.ts header):
 *   - GQA v_proj→o_proj scaling (4 query heads, 2 KV heads): the scale folding alone (no clipping, no
 *     quantization) leaves the fp block output unchanged, and the o_proj columns of the two query heads
 *     sharing a KV head get that v channel's scale;
 *   - the Gram-matrix losses equal the direct ones: gramOutputMse vs the MSE of X·Wᵀ and X·Ŵᵀ computed
 *     token by token, searchClipGram vs searchClip (direct partial outputs) on the same tokens;
 *   - the lo/hi clip candidates (asymmetric grids) lower every (row, group)'s partial-output error, measured
 *     token by token, versus AutoAWQ's candidates alone.
 */
import { describe, expect, it } from 'vitest';
import { parseModelConfig } from '../../src/arch/registry.js';
import { LLAMA_LINEARS } from '../../src/arch/llama-tensors.js';
import { createScalarBackend } from '../../src/kernels/scalar-backend.js';
import { BlockRunner, CalibActivations } from '../../src/pipeline/activations.js';
import { freeBlockWeights, toBlockWeights, type BlockF32 } from '../../src/pipeline/block-weights.js';
import { quantizeRtnFake } from '../../src/pipeline/fake-quant.js';
import { awqTransformBlock } from '../../src/quantizers/awq.js';
import { gramAccumulate, gramOutputMse, searchClip, searchClipGram } from '../../src/quantizers/awq-scale.js';
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
  num_key_value_heads: 2, // GQA: query heads 0,1 read KV head 0; 2,3 read KV head 1
  vocab_size: 32,
  max_position_embeddings: 64,
  rms_norm_eps: 1e-5,
  rope_theta: 10000,
  hidden_act: 'silu',
  tie_word_embeddings: true,
});
const backend = createScalarBackend();
const GRID: GridSpec = { bits: 3, groupSize: 32, sym: false };
const T = 32;
const D = config.hiddenSize;

function gaussian(seed: number): () => number {
  const rnd = seededRng(seed);
  return () => Math.sqrt(-2 * Math.log(1 - rnd())) * Math.cos(2 * Math.PI * rnd());
}

/** Random block; a few v_proj rows are large so that o_proj's input has outlier channels. */
function makeBlock(seed: number): BlockF32 {
  const g = gaussian(seed);
  const linears = {} as BlockF32['linears'];
  for (const spec of LLAMA_LINEARS) {
    const [n, k] = spec.shape(config);
    linears[spec.role] = { w: Float32Array.from({ length: n * k }, () => g() / Math.sqrt(k)), n, k, bias: null };
  }
  const v = linears.v_proj;
  for (const r of [3, 17, 40]) for (let c = 0; c < v.k; c++) v.w[r * v.k + c]! *= 12;
  const norm = () => Float32Array.from({ length: D }, () => 1 + 0.1 * g());
  return { layer: 0, inputNorm: norm(), postNorm: norm(), linears };
}

function makeActs(seed: number, n: number): CalibActivations {
  const g = gaussian(seed);
  const a = new CalibActivations(n, T, D);
  for (let i = 0; i < a.data.length; i++) a.data[i] = g() * (i % D === 7 || i % D === 51 ? 25 : 1);
  return a;
}

function cloneBlock(b: BlockF32): BlockF32 {
  const linears = {} as BlockF32['linears'];
  for (const [role, l] of Object.entries(b.linears)) linears[role as keyof BlockF32['linears']] = { ...l, w: l.w.slice(), bias: l.bias?.slice() ?? null };
  return { layer: b.layer, inputNorm: b.inputNorm.slice(), postNorm: b.postNorm.slice(), linears };
}

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

describe('AWQ v_proj→o_proj under GQA', () => {
  const block = makeBlock(21);
  const acts = makeActs(22, 4);

  it('scales v→o (shared per KV head) and the folding alone keeps the fp block output', () => {
    const transformed = cloneBlock(block);
    const reports = awqTransformBlock(config, transformed, acts, { gridFor: () => GRID, fakeQuant: quantizeRtnFake, backend, clip: false });
    const vo = reports.find((r) => r.mapping === 'v_proj→o_proj');
    expect(vo).toBeDefined();
    expect(vo!.alpha).not.toBeNull(); // the outlier v channels make some scaling worth it
    for (const r of reports) expect(r.mseBest, r.mapping).toBeLessThanOrEqual(r.mseNoScale);
    // v row (g, i) was divided by s, o_proj column (h, i) multiplied by s, for both heads h of KV head g
    const hd = config.headDim;
    const v0 = block.linears.v_proj;
    const v1 = transformed.linears.v_proj;
    const o0 = block.linears.o_proj;
    const o1 = transformed.linears.o_proj;
    const q0 = block.linears.q_proj;
    const q1 = transformed.linears.q_proj;
    let scaled = 0;
    for (let g = 0; g < 2; g++)
      for (let i = 0; i < hd; i++) {
        const row = g * hd + i;
        // v = v0 · s_qkv[col] / s_vo[row]; s_qkv[0] read off q_proj (whose column 0 is only × s_qkv[0])
        const s = (v0.w[row * v0.k]! / v1.w[row * v1.k]!) * (q1.w[0]! / q0.w[0]!);
        if (Math.abs(s - 1) > 1e-3) scaled++;
        for (const h of [2 * g, 2 * g + 1]) {
          const col = h * hd + i;
          for (const r of [0, 5, 63]) expect(o1.w[r * o1.k + col]! / o0.w[r * o0.k + col]!).toBeCloseTo(s, 4);
        }
      }
    expect(scaled).toBeGreaterThan(0);
    // the function is unchanged
    const ref = blockOutput(block, acts);
    expect(maxErrorOverRms(blockOutput(transformed, acts), ref)).toBeLessThan(1e-4);
  });
});

describe('Gram-matrix losses equal the direct token-by-token ones', () => {
  const n = 24;
  const k = 64;
  const rows = 200;
  const g = gaussian(31);
  const w = Float32Array.from({ length: n * k }, () => g());
  const x = Float32Array.from({ length: rows * k }, (_, i) => g() * (i % k === 9 ? 10 : 1));
  const gram = new Float64Array(k * k);
  gramAccumulate(gram, x.subarray(0, 120 * k), 120, k, backend); // accumulated in two chunks
  gramAccumulate(gram, x.subarray(120 * k), rows - 120, k, backend);

  it('gramOutputMse = mean over tokens and rows of (x·w − x·ŵ)²', () => {
    const wq = quantizeRtnFake(w, n, k, GRID);
    let direct = 0;
    for (let t = 0; t < rows; t++)
      for (let r = 0; r < n; r++) {
        let y = 0;
        let yq = 0;
        for (let c = 0; c < k; c++) {
          y += x[t * k + c]! * w[r * k + c]!;
          yq += x[t * k + c]! * wq[r * k + c]!;
        }
        direct += (y - yq) ** 2;
      }
    direct /= rows * n;
    expect(gramOutputMse(w, wq, n, k, gram, rows, backend)).toBeCloseTo(direct, 5);
    expect(Math.abs(gramOutputMse(w, wq, n, k, gram, rows, backend) / direct - 1)).toBeLessThan(1e-4);
  });

  it('searchClipGram chooses the clipping searchClip chooses on the same tokens', () => {
    const fast = searchClipGram(w, n, k, gram, GRID, quantizeRtnFake, backend);
    const slow = searchClip(w, n, k, x, rows, GRID, quantizeRtnFake, backend);
    let differ = 0;
    for (let i = 0; i < n * k; i++) if (fast[i] !== slow[i]) differ++;
    expect(differ).toBe(0);
    // and it did clip something
    let clipped = 0;
    for (let i = 0; i < n * k; i++) if (fast[i] !== w[i]) clipped++;
    expect(clipped).toBeGreaterThan(0);
  });

  it('lo/hi clip candidates never raise a group-partial output error (direct check) and do lower some', () => {
    const autoawq = quantizeRtnFake(searchClipGram(w, n, k, gram, GRID, quantizeRtnFake, backend), n, k, GRID);
    const lohi = quantizeRtnFake(searchClipGram(w, n, k, gram, GRID, quantizeRtnFake, backend, { loHi: true }), n, k, GRID);
    const gs = GRID.groupSize;
    const partialErr = (wq: Float32Array, r: number, c0: number): number => {
      let e = 0;
      for (let t = 0; t < rows; t++) {
        let d = 0;
        for (let c = c0; c < c0 + gs; c++) d += x[t * k + c]! * (wq[r * k + c]! - w[r * k + c]!);
        e += d * d;
      }
      return e;
    };
    let lower = 0;
    for (let r = 0; r < n; r++)
      for (let c0 = 0; c0 < k; c0 += gs) {
        const a = partialErr(autoawq, r, c0);
        const b = partialErr(lohi, r, c0);
        expect(b).toBeLessThanOrEqual(a * (1 + 1e-4) + 1e-9);
        if (b < a * (1 - 1e-3)) lower++;
      }
    expect(lower).toBeGreaterThan(0);
  });
});
