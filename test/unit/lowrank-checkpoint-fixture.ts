/**
 * Small mixed edgeq checkpoints for the lowrank-*.test.ts files, written with the real CheckpointSink
 * (edgeq format) from a bundled fp32 model: every block linear goes its own way — quantized on some grid,
 * kept dense F16 (the ladder's fp16 rung) or replaced by low-rank factors (exact truncated SVD, U = U_r·√S,
 * V = √S·V_rᵀ, each factor dense F16 or quantized by the registry's plain RTN). What was written is returned
 * so tests can compare against it bit by bit.
 */
import { expectedTensors } from '../../src/arch/llama-tensors.js';
import { f16Round } from '../../src/formats/edgeq/plan.js';
import type { LowRankPlanEntry, TensorPlanEntry } from '../../src/formats/edgeq/plan.js';
import { SafetensorsCheckpoint } from '../../src/formats/safetensors/checkpoint.js';
import { exactTruncatedSvd } from '../../src/lowrank/randomized-svd.js';
import { readModelConfig } from '../../src/model/model-dir.js';
import { createCheckpointSink } from '../../src/pipeline/checkpoint-sink.js';
import { qtypeFor, qtypeId } from '../../src/qtypes/registry.js';
import type { GridSpec, QuantizedWeight } from '../../src/qtypes/types.js';

export type LinearChoice =
  | { kind: 'dense' }
  | { kind: 'quantized'; grid: GridSpec }
  | { kind: 'lowrank'; rank: number; uGrid: GridSpec | null; vGrid: GridSpec | null };

export type Chooser = (role: string, layer: number, n: number, k: number) => LinearChoice;

export interface WrittenLowRank {
  n: number;
  k: number;
  r: number;
  /** Dense factors as stored (f16-rounded), or the quantized weights written. */
  u: Float32Array | QuantizedWeight;
  v: Float32Array | QuantizedWeight;
}

export interface WrittenCheckpoint {
  plan: TensorPlanEntry[];
  quantized: Map<string, QuantizedWeight>;
  lowRank: Map<string, WrittenLowRank>;
  /** Dense tensors as stored (F16 ones f16-rounded). */
  dense: Map<string, Float32Array>;
}

export const G = {
  q4_0: { bits: 4, groupSize: 32, sym: true } as GridSpec,
  q8_0: { bits: 8, groupSize: 32, sym: true } as GridSpec,
  int4g64a: { bits: 4, groupSize: 64, sym: false } as GridSpec,
  int3pca: { bits: 3, groupSize: -1, sym: false } as GridSpec,
  int8pcs: { bits: 8, groupSize: -1, sym: true } as GridSpec,
  int4pca: { bits: 4, groupSize: -1, sym: false } as GridSpec,
  int4g32a: { bits: 4, groupSize: 32, sym: false } as GridSpec,
};

const LINEAR_RE = /^model\.layers\.(\d+)\.(?:self_attn|mlp)\.(\w+)\.weight$/;

function svdFactors(w: Float32Array, n: number, k: number, rank: number): { u: Float32Array; v: Float32Array } {
  const s = exactTruncatedSvd(w, n, k, rank);
  const r = s.r;
  const u = new Float32Array(n * r);
  const v = new Float32Array(r * k);
  for (let c = 0; c < r; c++) {
    const root = Math.sqrt(s.s[c]!);
    for (let i = 0; i < n; i++) u[i * r + c] = s.u[i * r + c]! * root;
    for (let j = 0; j < k; j++) v[c * k + j] = s.v[j * r + c]! * root;
  }
  return { u, v };
}

/** Write an edgeq checkpoint of `srcDir` into `outDir`, each block linear stored as `choose` says. */
export async function writeMixedCheckpoint(srcDir: string, outDir: string, choose: Chooser): Promise<WrittenCheckpoint> {
  const { config } = readModelConfig(srcDir);
  const src = await SafetensorsCheckpoint.open(srcDir);
  const out: WrittenCheckpoint = { plan: [], quantized: new Map(), lowRank: new Map(), dense: new Map() };
  const choices = new Map<string, LinearChoice>();
  for (const t of expectedTensors(config)) {
    const m = LINEAR_RE.exec(t.name);
    if (m && t.shape.length === 2) {
      const [n, k] = t.shape as [number, number];
      const c = choose(m[2]!, Number(m[1]), n, k);
      choices.set(t.name, c);
      if (c.kind === 'quantized') out.plan.push({ kind: 'quantized', name: t.name, shape: [n, k], qtype: qtypeId(c.grid), grid: c.grid });
      else if (c.kind === 'lowrank') out.plan.push({ kind: 'lowrank', name: t.name, shape: [n, k], rank: c.rank, uGrid: c.uGrid, vGrid: c.vGrid });
      else out.plan.push({ kind: 'dense', name: t.name, shape: t.shape, dtype: 'F16' });
    } else {
      out.plan.push({ kind: 'dense', name: t.name, shape: t.shape, dtype: t.shape.length === 1 ? 'F32' : 'F16' });
    }
  }
  const sink = await createCheckpointSink('edgeq', outDir, { plan: out.plan, sourceDir: srcDir, overwrite: true, provenance: { method: 'test-mixed' } });
  try {
    for (const e of out.plan) {
      const w = await src.readF32(e.name);
      const c = choices.get(e.name);
      if (e.kind === 'quantized' && c?.kind === 'quantized') {
        const q = qtypeFor(c.grid).quantizeRef(w, e.shape[0], e.shape[1], e.name);
        out.quantized.set(e.name, q);
        await sink.writeQuantized(e.name, q);
      } else if (e.kind === 'lowrank') {
        const lr = e as LowRankPlanEntry;
        const [n, k] = lr.shape;
        const f = svdFactors(w, n, k, lr.rank);
        const u = lr.uGrid ? qtypeFor(lr.uGrid).quantizeRef(f.u, n, lr.rank) : f.u;
        const v = lr.vGrid ? qtypeFor(lr.vGrid).quantizeRef(f.v, lr.rank, k) : f.v;
        await sink.writeLowRank(e.name, { u, v });
        const stored = (x: Float32Array | QuantizedWeight) => (x instanceof Float32Array ? Float32Array.from(x, f16Round) : x);
        out.lowRank.set(e.name, { n, k, r: lr.rank, u: stored(u), v: stored(v) });
      } else if (e.kind === 'dense') {
        await sink.writeDense(e.name, w);
        out.dense.set(e.name, e.dtype === 'F16' ? Float32Array.from(w, f16Round) : w);
      }
    }
    await sink.finish({ method: 'test-mixed' });
  } catch (err) {
    await sink.abort();
    throw err;
  } finally {
    await src.close();
  }
  return out;
}

/** ŵ = scale · (code − zero), per element, in float64 (independent of the registry's dequantizer). */
export function dequantScalar(q: QuantizedWeight): Float64Array {
  const w = new Float64Array(q.n * q.k);
  for (let r = 0; r < q.n; r++) {
    for (let c = 0; c < q.k; c++) {
      const g = q.gIdx ? q.gIdx[c]! : Math.floor(c / q.groupSize);
      w[r * q.k + c] = q.scales[r * q.numGroups + g]! * (q.codes[r * q.k + c]! - q.zeros[r * q.numGroups + g]!);
    }
  }
  return w;
}

export function factorF64(x: Float32Array | QuantizedWeight): Float64Array {
  return x instanceof Float32Array ? Float64Array.from(x) : dequantScalar(x);
}

/** y (m, n) = x (m, k) · (U·V)ᵀ, plain float64 loops: t = x·Vᵀ, y = t·Uᵀ. */
export function lowRankForward64(w: WrittenLowRank, x: ArrayLike<number>, m: number): Float64Array {
  const u = factorF64(w.u);
  const v = factorF64(w.v);
  const t = new Float64Array(m * w.r);
  for (let i = 0; i < m; i++) for (let a = 0; a < w.r; a++) {
    let s = 0;
    for (let j = 0; j < w.k; j++) s += x[i * w.k + j]! * v[a * w.k + j]!;
    t[i * w.r + a] = s;
  }
  const y = new Float64Array(m * w.n);
  for (let i = 0; i < m; i++) for (let o = 0; o < w.n; o++) {
    let s = 0;
    for (let a = 0; a < w.r; a++) s += t[i * w.r + a]! * u[o * w.r + a]!;
    y[i * w.n + o] = s;
  }
  return y;
}

/** The mixed assignment the tests use: every kind of storage, low-rank factors of every kind. */
export const mixedWithLowRank: Chooser = (role, layer, _n, k) => {
  if (role === 'q_proj') return { kind: 'quantized', grid: G.q4_0 };
  if (role === 'k_proj') return { kind: 'quantized', grid: G.q8_0 };
  if (role === 'v_proj') return { kind: 'dense' };
  if (layer % 2 === 1) return { kind: 'quantized', grid: k % 64 === 0 ? G.int4g64a : G.int3pca };
  if (role === 'o_proj') return { kind: 'lowrank', rank: 16, uGrid: G.int8pcs, vGrid: G.int4g32a };
  if (role === 'gate_proj') return { kind: 'lowrank', rank: 24, uGrid: null, vGrid: null };
  if (role === 'up_proj') return { kind: 'lowrank', rank: 20, uGrid: G.int4pca, vGrid: null };
  return { kind: 'lowrank', rank: 8, uGrid: null, vGrid: G.int8pcs }; // down_proj
};
