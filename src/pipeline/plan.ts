/**
 * The quantization plan — pure: which tensors are quantized on which grid (with per-tensor fallbacks for
 * shapes the grid cannot take), the exact bytes of the output in the chosen checkpoint format (refused
 * up front when that layout cannot hold the plan), and the estimated peak memory of the streaming
 * pipeline. `edgeq quantize --dry-run` prints it; the pipeline and the writer follow it.
 */
import type { LlamaConfig } from '../arch/llama-config.js';
import { GLOBAL_TENSORS, LLAMA_LINEARS, linearBiasName, linearWeightName, normName, type LinearRole, type LinearSpec } from '../arch/llama-tensors.js';
import type { TapPoint } from '../infer/llama-block.js';
import { EdgeqError } from '../core/errors.js';
import type { TensorPlanEntry } from '../formats/edgeq/plan.js';
import { checkGroupable, fallbackGrid, qtypeFor } from '../qtypes/registry.js';
import type { GridSpec } from '../qtypes/types.js';
import { lowRankEntryBytes } from '../formats/edgeq/plan.js';
import type { ResolvedTreatment } from '../ladder/rungs.js';
import { checkFormatPlan, exportEntryBytes, forcedDenseDtype, type CheckpointFormat } from './checkpoint-sink.js';

export type QuantMethod = 'rtn' | 'gptq' | 'awq';

export interface PlanRequest {
  method: QuantMethod;
  grid: GridSpec;
  /** Quantize a tensor whose k the group size does not divide per channel instead of refusing. */
  fallback: boolean;
  /** Storage dtype of the source checkpoint's dense tensors ('F16' keeps fp16, anything else F32); 'F16' for autogptq/autoawq. */
  denseDtype: 'F16' | 'F32';
  /** Output layout (default edgeq); plan bytes are counted in it and a plan it cannot hold is refused. */
  format?: CheckpointFormat;
  actOrder?: boolean;
  calib: { samples: number; seqLen: number };
  /**
   * Per linear weight name: a treatment other than `method` on `grid` (the ladder's plan, `--method svd`):
   * dense F16, a quantized grid of its own (solved by `method`), or low-rank factors. Already resolved for
   * the weight's shape (ladder/rungs.ts resolveTreatment).
   */
  treatments?: ReadonlyMap<string, ResolvedTreatment>;
}

export interface PeakMemoryEstimate {
  blockWeights: number;
  activations: number;
  statistics: number;
  total: number;
}

export interface QuantPlan {
  format: CheckpointFormat;
  entries: TensorPlanEntry[];
  /** Quantized linear count and those that fell back to per-channel. */
  quantizedTensors: number;
  fallbacks: { name: string; from: string; to: string }[];
  params: number;
  bytes: number;
  bitsPerWeight: number;
  peakMemory: PeakMemoryEstimate;
}

const bytesOfDense = (shape: readonly number[], dtype: 'F16' | 'F32'): number => shape.reduce((a, b) => a * b, 1) * (dtype === 'F16' ? 2 : 4);

/** The linears sharing one input (one tap point, one set of statistics), in dependency order. */
export const LINEAR_GROUPS: readonly { point: TapPoint; roles: readonly LinearRole[] }[] = [
  { point: 'qkv', roles: ['q_proj', 'k_proj', 'v_proj'] },
  { point: 'o', roles: ['o_proj'] },
  { point: 'gate_up', roles: ['gate_proj', 'up_proj'] },
  { point: 'down', roles: ['down_proj'] },
];

/**
 * The order block `layer`'s linears are solved and written in: group by group, and inside a group the
 * linears not quantized by the method (dense, low-rank) first — they read the group's XᵀX before a GPTQ
 * solve inverts it in place. The plan lists them in this order (a safetensors stream writes in plan order).
 */
export function solveOrder(layer: number, treatments: ReadonlyMap<string, ResolvedTreatment> | undefined): LinearSpec[] {
  const quantized = (spec: LinearSpec): boolean => (treatments?.get(linearWeightName(layer, spec))?.kind ?? 'quantized') === 'quantized';
  const out: LinearSpec[] = [];
  for (const g of LINEAR_GROUPS) {
    const specs = g.roles.map((role) => LLAMA_LINEARS.find((s) => s.role === role)!);
    out.push(...specs.filter((s) => !quantized(s)), ...specs.filter(quantized));
  }
  return out;
}

export function buildQuantPlan(c: LlamaConfig, req: PlanRequest): QuantPlan {
  const format = req.format ?? 'edgeq';
  const forced = forcedDenseDtype(format);
  if (forced && req.denseDtype !== forced) {
    throw new EdgeqError('E_PLAN_DTYPE', `--format ${format} stores dense tensors as ${forced}, but the plan asks for ${req.denseDtype}`, `build the plan with denseDtype '${forced}'`);
  }
  const entries: TensorPlanEntry[] = [];
  const fallbacks: QuantPlan['fallbacks'] = [];
  let params = 0;
  let quantizedTensors = 0;
  const dense = (name: string, shape: number[], dtype: 'F16' | 'F32' = req.denseDtype): void => {
    entries.push({ kind: 'dense', name, shape, dtype: forced ?? dtype });
    params += shape.reduce((a, b) => a * b, 1);
  };
  dense(GLOBAL_TENSORS.embed, [c.vocabSize, c.hiddenSize]);
  for (let l = 0; l < c.numLayers; l++) {
    dense(normName(l, 'input_layernorm'), [c.hiddenSize], 'F32');
    dense(normName(l, 'post_attention_layernorm'), [c.hiddenSize], 'F32');
    for (const spec of solveOrder(l, req.treatments)) {
      const [n, k] = spec.shape(c);
      const name = linearWeightName(l, spec);
      const t = req.treatments?.get(name);
      if (t && t.kind !== 'quantized') {
        if (t.kind === 'dense') entries.push({ kind: 'dense', name, shape: [n, k], dtype: 'F16' });
        else entries.push({ kind: 'lowrank', name, shape: [n, k], rank: t.rank, uGrid: t.uGrid, vGrid: t.vGrid });
        params += n * k;
        if (spec.hasBias(c)) dense(linearBiasName(l, spec), [n], 'F32');
        continue;
      }
      const want = t ? t.grid : req.grid;
      let grid = want;
      if (req.fallback) {
        grid = fallbackGrid(want, k);
        if (grid !== want) fallbacks.push({ name, from: qtypeFor(want).id, to: qtypeFor(grid).id });
      } else checkGroupable(want, k, name);
      // act-order is stored as a g_idx, which only a grid with several groups per row has
      const actOrder = req.method === 'gptq' && !!req.actOrder && grid.groupSize !== -1 && grid.groupSize < k;
      entries.push({ kind: 'quantized', name, shape: [n, k], qtype: qtypeFor(grid).id, grid, actOrder });
      params += n * k;
      quantizedTensors++;
      if (spec.hasBias(c)) dense(linearBiasName(l, spec), [n], 'F32');
    }
  }
  dense(GLOBAL_TENSORS.finalNorm, [c.hiddenSize], 'F32');
  if (!c.tieWordEmbeddings) dense(GLOBAL_TENSORS.lmHead, [c.vocabSize, c.hiddenSize]);
  checkFormatPlan(format, entries, fallbacks);
  let bytes = 0;
  for (const e of entries) {
    if (e.kind === 'dense') bytes += bytesOfDense(e.shape, e.dtype ?? 'F16');
    else if (e.kind === 'lowrank') bytes += lowRankEntryBytes(e);
    else if (format !== 'edgeq') bytes += exportEntryBytes(format, e);
    else bytes += qtypeFor(e.grid).bytes(e.shape[0], e.shape[1], e.name) + (e.actOrder ? e.shape[1] * 4 : 0);
  }
  return { format, entries, quantizedTensors, fallbacks, params, bytes, bitsPerWeight: (8 * bytes) / params, peakMemory: estimatePeakMemory(c, req) };
}

/**
 * Peak memory of the streaming pipeline ≈ one block's weights (the kernel's packed copy; AWQ also keeps the
 * fp32 arrays it rescales; otherwise only the linear being solved is in fp32, read and working copy)
 * + calibration activations (the stream plus a scratch copy; AWQ also keeps every group's inputs)
 * + statistics (GPTQ: one group's k×k float64 Hessian, inverted in place; imatrix: vectors).
 */
export function estimatePeakMemory(c: LlamaConfig, req: PlanRequest): PeakMemoryEstimate {
  let blockParams = 0;
  let maxLinear = 0;
  for (const s of LLAMA_LINEARS) {
    const [n, k] = s.shape(c);
    blockParams += n * k;
    maxLinear = Math.max(maxLinear, n * k);
  }
  const blockWeights = blockParams * 4 + (req.method === 'awq' ? blockParams * 4 : maxLinear * 4 * 2);
  const tokens = req.calib.samples * req.calib.seqLen;
  const widths = { qkv: c.hiddenSize, o: c.numHeads * c.headDim, gateUp: c.hiddenSize, down: c.intermediateSize };
  let activations = tokens * c.hiddenSize * 4 + req.calib.seqLen * (c.hiddenSize * 3 + c.intermediateSize * 2 + c.numHeads * c.headDim * 2) * 4;
  if (req.method === 'awq') activations += tokens * (widths.qkv + widths.o + widths.gateUp + widths.down) * 4;
  const statistics = req.method === 'gptq' ? Math.max(...Object.values(widths)) ** 2 * 8 : 0;
  return { blockWeights, activations, statistics, total: blockWeights + activations + statistics };
}
