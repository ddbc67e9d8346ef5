/**
 * AWQ as a block transform (after AutoAWQ's quantizer): capture the inputs of every linear group from the
 * block's fp forward, then for each smoothing mapping grid-search the scale exponent α (20 points, duo
 * scaling) by the MSE of the real module output (attention, o_proj, MLP, down_proj) under fake
 * quantization, fold the winning scales into the preceding op (RMSNorm weight, v_proj rows, up_proj rows)
 * and the consumers' columns, then search per-group clipping for every linear except q/k. The final
 * integer quantization (RTN on the transformed weights) is the pipeline's job.
 */
import type { LlamaConfig } from '../arch/llama-config.js';
import type { LinearRole } from '../arch/llama-tensors.js';
import { attentionSublayer, mlpSublayer, type TapPoint } from '../infer/llama-block.js';
import { KvCache } from '../infer/kv-cache.js';
import { DenseLinear } from '../infer/linear.js';
import { RopeTable } from '../infer/rope.js';
import type { MatmulBackend } from '../kernels/backend.js';
import { BlockRunner, CalibActivations } from '../pipeline/activations.js';
import { freeBlockWeights, toBlockWeights, type BlockF32, type LinearF32 } from '../pipeline/block-weights.js';
import type { GridSpec } from '../qtypes/types.js';
import { awqScales, meanAbsPerChannel, mse, scaledFakeQuant, searchClip, weightMeanPerChannel, type FakeQuant } from './awq-scale.js';

export interface AwqOptions {
  /** The grid each linear will be quantized on (per-tensor fallbacks included). */
  gridFor: (role: LinearRole) => GridSpec;
  fakeQuant: FakeQuant;
  backend: MatmulBackend;
  nGrid?: number;
  duo?: boolean;
  clip?: boolean;
  /** Tokens sampled (evenly strided) for the clip search. */
  clipTokens?: number;
  /** Calibration tokens the scale search runs on (whole sequences from the start; default 4096: a CPU budget — AutoAWQ uses 64K). */
  searchTokens?: number;
}

export interface AwqMappingReport {
  mapping: string;
  alpha: number;
  mseBest: number;
  /** Module-output MSE of plain fake quantization (s = 1), for comparison. */
  mseNoScale: number;
}

type Captured = Record<TapPoint, Float32Array>; // each (N·T, width)

function captureInputs(c: LlamaConfig, block: BlockF32, acts: CalibActivations, backend: MatmulBackend): Captured {
  const rows = acts.n * acts.T;
  const width: Record<TapPoint, number> = { qkv: c.hiddenSize, o: c.numHeads * c.headDim, gate_up: c.hiddenSize, down: c.intermediateSize };
  const cap = Object.fromEntries((Object.keys(width) as TapPoint[]).map((p) => [p, new Float32Array(rows * width[p])])) as Captured;
  const w = toBlockWeights(backend, block);
  let seq = 0;
  new BlockRunner(c, backend, acts.T).run(w, acts, {
    propagate: false,
    tap: (p, x, T) => {
      cap[p].set(x, seq * T * width[p]);
      if (p === 'down') seq++;
    },
  });
  freeBlockWeights(w);
  return cap;
}

/** Runs `fn` with DenseLinears over the given weights, freeing them afterwards. */
function withLinears<T>(backend: MatmulBackend, ls: Partial<Record<LinearRole, LinearF32>>, fn: (l: Record<string, DenseLinear>) => T): T {
  const made: Record<string, DenseLinear> = {};
  for (const [role, l] of Object.entries(ls)) made[role] = new DenseLinear(backend, l!.w, l!.n, l!.k, l!.bias);
  try {
    return fn(made);
  } finally {
    for (const l of Object.values(made)) l.free();
  }
}

interface Mapping {
  name: string;
  balance: LinearRole[];
  input: TapPoint;
  /** Module output for given balance weights (others from the block, fp). */
  output: (ws: Partial<Record<LinearRole, LinearF32>>) => Float32Array;
  /** Fold 1/s into the preceding op. */
  foldPrev: (s: Float32Array) => void;
}

export function awqTransformBlock(c: LlamaConfig, block: BlockF32, all: CalibActivations, opts: AwqOptions): AwqMappingReport[] {
  const { backend, gridFor, fakeQuant } = opts;
  const L = block.linears;
  const S = Math.min(all.n, Math.max(1, Math.ceil((opts.searchTokens ?? 4096) / all.T)));
  const acts = S === all.n ? all : new CalibActivations(S, all.T, all.d, all.data.subarray(0, S * all.T * all.d));
  const X = captureInputs(c, block, acts, backend);
  const { n: N, T } = acts;
  const rope = RopeTable.forConfig(c, T);
  const cache = new KvCache(1, c.numKvHeads, c.headDim, T);
  const d = c.hiddenSize;

  const attnOut = (ws: Partial<Record<LinearRole, LinearF32>>): Float32Array =>
    withLinears(backend, { q_proj: L.q_proj, k_proj: L.k_proj, v_proj: L.v_proj, o_proj: L.o_proj, ...ws }, (l) => {
      const out = new Float32Array(N * T * d);
      for (let i = 0; i < N; i++) {
        cache.reset();
        const y = attentionSublayer({ c, backend, rope, cache, layer: 0 }, l as never, X.qkv.subarray(i * T * d, (i + 1) * T * d), T);
        out.set(y, i * T * d);
      }
      return out;
    });
  const linearOut = (role: LinearRole, input: TapPoint) => (ws: Partial<Record<LinearRole, LinearF32>>) =>
    withLinears(backend, { [role]: ws[role] ?? L[role] }, (l) => l[role].forward(X[input], N * T));
  const mlpOut = (ws: Partial<Record<LinearRole, LinearF32>>): Float32Array =>
    withLinears(backend, { gate_proj: L.gate_proj, up_proj: L.up_proj, down_proj: L.down_proj, ...ws }, (l) => mlpSublayer(l as never, X.gate_up, N * T));

  const divRows = (l: LinearF32, s: Float32Array): void => {
    for (let r = 0; r < l.n; r++) {
      for (let k = 0; k < l.k; k++) l.w[r * l.k + k] /= s[r];
      if (l.bias) l.bias[r] /= s[r];
    }
  };
  const mappings: Mapping[] = [
    { name: 'input_layernorm→q,k,v', balance: ['q_proj', 'k_proj', 'v_proj'], input: 'qkv', output: attnOut, foldPrev: (s) => s.forEach((v, i) => (block.inputNorm[i] /= v)) },
  ];
  if (L.v_proj.n === L.o_proj.k)
    mappings.push({ name: 'v_proj→o_proj', balance: ['o_proj'], input: 'o', output: linearOut('o_proj', 'o'), foldPrev: (s) => divRows(L.v_proj, s) });
  mappings.push(
    { name: 'post_attention_layernorm→gate,up', balance: ['gate_proj', 'up_proj'], input: 'gate_up', output: mlpOut, foldPrev: (s) => s.forEach((v, i) => (block.postNorm[i] /= v)) },
    { name: 'up_proj→down_proj', balance: ['down_proj'], input: 'down', output: linearOut('down_proj', 'down'), foldPrev: (s) => divRows(L.up_proj, s) },
  );

  const reports: AwqMappingReport[] = [];
  const nGrid = opts.nGrid ?? 20;
  for (const m of mappings) {
    const k = L[m.balance[0]].k;
    const x = X[m.input];
    const rows = N * T;
    const ref = m.output({});
    const xMean = meanAbsPerChannel(x, rows, k);
    const wMean = weightMeanPerChannel(m.balance.map((r) => L[r]), k, gridFor(m.balance[0]).groupSize);
    const candidate = (s: Float32Array) => Object.fromEntries(m.balance.map((r) => [r, { ...L[r], w: scaledFakeQuant(L[r].w, L[r].n, k, s, gridFor(r), fakeQuant) }]));
    const ones = new Float32Array(k).fill(1);
    const mseNoScale = mse(m.output(candidate(ones)), ref);
    let best: { alpha: number; err: number; s: Float32Array } = { alpha: -1, err: Infinity, s: ones };
    for (let i = 0; i < nGrid; i++) {
      const alpha = i / nGrid;
      const s = awqScales(xMean, wMean, alpha, opts.duo ?? true);
      const err = mse(m.output(candidate(s)), ref);
      if (err < best.err) best = { alpha, err, s };
    }
    // Fold: consumers' columns × s, producer ÷ s, and the captured inputs ÷ s (as AutoAWQ's apply_scale).
    for (const r of m.balance) for (let row = 0; row < L[r].n; row++) for (let col = 0; col < k; col++) L[r].w[row * k + col] *= best.s[col];
    m.foldPrev(best.s);
    for (let row = 0; row < rows; row++) for (let col = 0; col < k; col++) x[row * k + col] /= best.s[col];
    reports.push({ mapping: m.name, alpha: best.alpha, mseBest: best.err, mseNoScale });
  }

  if (opts.clip ?? true) {
    const want = opts.clipTokens ?? 512;
    const rows = N * T;
    const stride = Math.max(1, Math.floor(rows / want));
    const inputOf: Record<LinearRole, TapPoint> = { q_proj: 'qkv', k_proj: 'qkv', v_proj: 'qkv', o_proj: 'o', gate_proj: 'gate_up', up_proj: 'gate_up', down_proj: 'down' };
    for (const role of ['v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'] as LinearRole[]) {
      const l = L[role];
      const src = X[inputOf[role]];
      const t = Math.ceil(rows / stride);
      const xs = new Float32Array(t * l.k);
      for (let i = 0; i < t; i++) xs.set(src.subarray(i * stride * l.k, (i * stride + 1) * l.k), i * l.k);
      l.w = searchClip(l.w, l.n, l.k, xs, t, gridFor(role), fakeQuant, backend);
    }
  }
  return reports;
}
