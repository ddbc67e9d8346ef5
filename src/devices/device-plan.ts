/**
 * "Will it run on my device?" — pure planning, nothing is quantized or loaded.
 *
 * For each candidate representation of a model (fp16, the integer grids, the ladder at size budgets):
 *   bytes          exact tensor bytes of the checkpoint `edgeq quantize` writes (its plan, src/pipeline/plan.ts,
 *                  with per-channel fallback where a group size does not divide k; embedding/head fp16,
 *                  norms F32); fp16 = every tensor in fp16. The safetensors JSON header (< 64 KiB) is not
 *                  counted
 *   bytesPerToken  weight bytes a decode step reads: every block linear, the LM head (the embedding
 *                  matrix when tied), the norms and one embedding row
 *   kvBytes        the KV cache at the context length, fp16 (2 · layers · kv_heads · head_dim · ctx · 2 B)
 *   fits           bytes + kvBytes ≤ the device's usable memory
 *   tokPerSec      bandwidth ÷ (bytesPerToken + kvBytes): the roofline of a memory-bound decoder at a
 *                  full context (every cached key and value is read once per token)
 *   realTime       tokPerSec ≥ 3.3 (≈ 2.5 words/s, a reading pace)
 * Ladder rows are budgets, not exact sizes: the ladder fills at most that many bits per linear weight.
 */
import type { LlamaConfig } from '../arch/llama-config.js';
import { expectedTensors, GLOBAL_TENSORS } from '../arch/llama-tensors.js';
import { lowRankEntryBytes, type TensorPlanEntry } from '../formats/edgeq/plan.js';
import { buildQuantPlan } from '../pipeline/plan.js';
import { qtypeFor } from '../qtypes/registry.js';
import type { GridSpec } from '../qtypes/types.js';

export const REAL_TIME_TOK_PER_SEC = 3.3;
export const LADDER_BUDGETS = [2.5, 3.0, 3.5] as const;

export interface CandidateSpec {
  id: string;
  label: string;
  grid: GridSpec | null; // null: fp16
}

export const INT_CANDIDATES: readonly CandidateSpec[] = [
  { id: 'fp16', label: 'fp16', grid: null },
  { id: 'int8', label: 'int8 per-channel', grid: { bits: 8, groupSize: -1, sym: true } },
  { id: 'int4-g128', label: 'int4 g128', grid: { bits: 4, groupSize: 128, sym: false } },
  { id: 'int3-g128', label: 'int3 g128', grid: { bits: 3, groupSize: 128, sym: false } },
  { id: 'int2-g64', label: 'int2 g64', grid: { bits: 2, groupSize: 64, sym: false } },
];

export interface Candidate {
  id: string;
  label: string;
  /** Registry id of the linears' grid ('fp16' for dense). */
  qtype: string;
  bytes: number;
  /** false for ladder budgets (an upper bound). */
  exact: boolean;
  params: number;
  bitsPerWeight: number;
  bytesPerToken: number;
}

const numel = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);

/** Dense fp16 bytes of everything that is not a block linear, and the linears' parameter count. */
function splitParams(c: LlamaConfig): { denseBytes: number; linearParams: number; params: number } {
  let denseBytes = 0;
  let linearParams = 0;
  let params = 0;
  for (const t of expectedTensors(c)) {
    const n = numel(t.shape);
    params += n;
    if (t.shape.length === 2 && t.name !== GLOBAL_TENSORS.embed && t.name !== GLOBAL_TENSORS.lmHead) linearParams += n;
    else denseBytes += 2 * n;
  }
  return { denseBytes, linearParams, params };
}

/**
 * Stored bytes of a plan's block linears, however each is stored: quantized (codes, scales, zeros, an
 * act-order g_idx), low-rank (both factors, quantized or F16) or kept dense (a 2-D tensor other than the
 * embedding and the LM head). Norms, biases, the embedding and the head are not linears.
 */
export function planLinearBytes(entries: readonly TensorPlanEntry[]): number {
  let bytes = 0;
  for (const e of entries) {
    if (e.kind === 'quantized') bytes += qtypeFor(e.grid).bytes(e.shape[0], e.shape[1], e.name) + (e.actOrder ? e.shape[1] * 4 : 0);
    else if (e.kind === 'lowrank') bytes += lowRankEntryBytes(e);
    else if (e.shape.length === 2 && e.name !== GLOBAL_TENSORS.embed && e.name !== GLOBAL_TENSORS.lmHead) bytes += numel(e.shape) * (e.dtype === 'F32' ? 4 : 2);
  }
  return bytes;
}

/** Bytes a decode step reads when the linears take `linearBytes`. */
function perToken(c: LlamaConfig, linearBytes: number): number {
  const d = c.hiddenSize;
  const head = c.vocabSize * d * 2; // untied lm_head, or the tied embedding matrix, fp16
  const norms = (2 * c.numLayers + 1) * d * 2;
  return linearBytes + head + norms + d * 2;
}

export function buildCandidates(c: LlamaConfig): Candidate[] {
  const { denseBytes, linearParams, params } = splitParams(c);
  const out: Candidate[] = [];
  for (const spec of INT_CANDIDATES) {
    if (!spec.grid) {
      out.push({ id: spec.id, label: spec.label, qtype: 'fp16', bytes: 2 * params, exact: true, params, bitsPerWeight: 16, bytesPerToken: perToken(c, 2 * linearParams) });
      continue;
    }
    const plan = buildQuantPlan(c, { method: 'rtn', grid: spec.grid, fallback: true, denseDtype: 'F16', calib: { samples: 1, seqLen: 1 } });
    const linearBytes = planLinearBytes(plan.entries);
    // exactly what `edgeq quantize` writes (norms and biases F32, embedding and head fp16)
    out.push({ id: spec.id, label: spec.label, qtype: qtypeFor(spec.grid).id, bytes: plan.bytes, exact: true, params, bitsPerWeight: plan.bitsPerWeight, bytesPerToken: perToken(c, linearBytes) });
  }
  for (const b of LADDER_BUDGETS) {
    const linearBytes = Math.floor((b * linearParams) / 8);
    const bytes = linearBytes + denseBytes;
    out.push({ id: `ladder-${b}`, label: `ladder ≤ ${b} bpw`, qtype: 'ladder', bytes, exact: false, params, bitsPerWeight: (8 * bytes) / params, bytesPerToken: perToken(c, linearBytes) });
  }
  return out;
}

export function kvCacheBytes(c: LlamaConfig, ctx: number, bytesPerValue = 2): number {
  return 2 * c.numLayers * c.numKvHeads * c.headDim * ctx * bytesPerValue;
}

export interface DeviceFit {
  candidate: Candidate;
  kvBytes: number;
  totalBytes: number;
  usableBytes: number;
  fits: boolean;
  /** Roofline decode tokens/s at the full context. */
  tokPerSec: number;
  realTime: boolean;
}

export function fitOnDevice(cands: Candidate[], c: LlamaConfig, ctx: number, usableBytes: number, bandwidth: number): DeviceFit[] {
  const kvBytes = kvCacheBytes(c, ctx);
  return cands.map((candidate) => {
    const totalBytes = candidate.bytes + kvBytes;
    const tokPerSec = bandwidth / (candidate.bytesPerToken + kvBytes);
    return { candidate, kvBytes, totalBytes, usableBytes, fits: totalBytes <= usableBytes, tokPerSec, realTime: tokPerSec >= REAL_TIME_TOK_PER_SEC };
  });
}
