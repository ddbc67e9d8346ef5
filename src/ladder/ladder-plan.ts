/**
 * `--method ladder`: plan one rung per linear under a size budget — planning only; the streaming pipeline
 * (quantize-model.ts) executes the plan's treatments afterwards.
 *
 *   1. rungs: the logical ladder lowered to the execution target (rungs.ts)
 *   2. sensitivity: every linear × rung priced on a calibration subset (sensitivity.ts)
 *   3. allocation: one rung per linear, total bytes ≤ budget, smallest estimated loss (allocate.ts, exact
 *      multiple-choice knapsack)
 *
 * The budget counts the linears only (what the ladder chooses; embeddings, head and norms are stored as
 * the uniform plans store them): `--target-bpw B` allows B·Σ n·k / 8 bytes, `--max-size MB` allows
 * MB·10⁶ bytes minus the other tensors' exact bytes. Sizes are the exact stored bytes of each rung
 * (scales, zero points, factors included), so the written checkpoint's linears take exactly `bytes` —
 * except on a target that re-encodes quantized weights (snapdragon-npu: LPBQ), where sizes and errors
 * are those of the device encoding the export writes.
 */
import type { LlamaConfig } from '../arch/llama-config.js';
import { UsageError } from '../core/errors.js';
import type { TensorReader } from '../formats/safetensors/types.js';
import type { LlamaModel } from '../infer/llama-model.js';
import type { MatmulBackend } from '../kernels/backend.js';
import type { ExecutionTarget } from '../targets/execution-targets.js';
import { allocateLadder } from './allocate.js';
import { describeTreatment, rungsForTarget, targetAccepts, type LadderRung, type ResolvedTreatment } from './rungs.js';
import { measureSensitivity, probeRung, type LinearSensitivity } from './sensitivity.js';
import { npuWeightValues, toNpuWeight } from '../formats/qnn/npu-weight.js';
import type { QuantizedWeight } from '../qtypes/types.js';

/** The NPU's re-encoding (the QNN export's), so that the plan's sizes and errors are those of the encodings written. */
function npuStore(q: QuantizedWeight, name: string): { values: Float32Array; bytes: number } {
  const w = toNpuWeight(q, name);
  return { values: npuWeightValues(w), bytes: w.bytes };
}

export type LadderBudget = { bitsPerWeight: number } | { maxBytes: number; otherBytes: number };

export interface LadderChoice {
  name: string;
  rung: string;
  type: string;
  bytes: number;
  /** Estimated KL increase (sensitivity.ts). */
  loss: number;
}

export interface LadderPlan {
  target: string;
  rungs: { id: string; type: string; from: string[]; lowered: boolean }[];
  budgetBytes: number;
  /** Σ bytes of the chosen rungs (≤ budgetBytes). */
  bytes: number;
  params: number;
  /** 8·bytes / params over the linears. */
  bitsPerWeight: number;
  /** Σ estimated loss of the chosen rungs. */
  estimatedLoss: number;
  choices: LadderChoice[];
  /** How many linears took each rung. */
  histogram: Record<string, number>;
  /** The probe rung asked for (a weight that cannot take it is probed at its lowest-bit quantized rung). */
  probe: string;
  sensitivity: { samples: number; tokens: number };
}

export interface LadderRequest {
  config: LlamaConfig;
  model: LlamaModel;
  reader: TensorReader;
  backend: MatmulBackend;
  target: ExecutionTarget;
  sym: boolean;
  budget: LadderBudget;
  ids: Int32Array;
  n: number;
  T: number;
  probe?: string;
  /** The rungs to search instead of the target's lowered logical ladder (e.g. `--method svd --rank-by sensitivity`). */
  rungs?: LadderRung[];
  onProgress?: (done: number, total: number, name: string) => void;
}

export function budgetBytes(b: LadderBudget, linearParams: number): number {
  if ('bitsPerWeight' in b) {
    if (!(b.bitsPerWeight > 0)) throw new UsageError('E_LADDER_BUDGET', `--target-bpw must be positive, got ${b.bitsPerWeight}`);
    return Math.floor((b.bitsPerWeight * linearParams) / 8);
  }
  const left = b.maxBytes - b.otherBytes;
  if (!(left > 0)) throw new UsageError('E_LADDER_BUDGET', `--max-size leaves nothing for the linears: the embeddings, head and norms alone take ${(b.otherBytes / 1e6).toFixed(2)} MB`, 'raise --max-size');
  return Math.floor(left);
}

/** Pure: the allocation of measured sensitivities under a byte budget. */
export function allocateFromSensitivity(sens: readonly LinearSensitivity[], rungs: readonly LadderRung[], budget: number): { plan: Omit<LadderPlan, 'target' | 'probe' | 'sensitivity'>; treatments: Map<string, ResolvedTreatment> } {
  const res = allocateLadder(sens.map((s) => s.rungs.map((r) => ({ bytes: r.bytes, loss: r.loss }))), budget);
  const treatments = new Map<string, ResolvedTreatment>();
  const choices: LadderChoice[] = [];
  const histogram: Record<string, number> = {};
  let params = 0;
  for (const [i, s] of sens.entries()) {
    const r = s.rungs[res.choice[i]!]!;
    treatments.set(s.name, r.treatment);
    choices.push({ name: s.name, rung: r.id, type: describeTreatment(r.treatment), bytes: r.bytes, loss: r.loss });
    histogram[r.id] = (histogram[r.id] ?? 0) + 1;
    params += s.n * s.k;
  }
  const bytes = choices.reduce((a, c) => a + c.bytes, 0);
  return {
    plan: {
      rungs: rungs.map((r) => ({ id: r.id, type: r.treatment.kind === 'quantized' ? `int${r.treatment.grid.bits} g${r.treatment.grid.groupSize} ${r.treatment.grid.sym ? 'sym' : 'asym'}` : r.treatment.kind === 'dense' ? 'F16' : `low rank ${r.treatment.keep * 100}%`, from: r.from, lowered: r.lowered })),
      budgetBytes: budget,
      bytes,
      params,
      bitsPerWeight: (8 * bytes) / params,
      estimatedLoss: choices.reduce((a, c) => a + c.loss, 0),
      choices,
      histogram,
    },
    treatments,
  };
}

export async function planLadder(req: LadderRequest): Promise<{ plan: LadderPlan; treatments: Map<string, ResolvedTreatment>; sensitivity: LinearSensitivity[] }> {
  const rungs = req.rungs ?? rungsForTarget(req.target, req.sym);
  const sensitivity = await measureSensitivity({ config: req.config, model: req.model, reader: req.reader, backend: req.backend, rungs, ids: req.ids, n: req.n, T: req.T, probe: req.probe, accepts: (t) => targetAccepts(req.target, t), store: req.target.codec === 'npu' ? npuStore : undefined, onProgress: req.onProgress });
  const linearParams = sensitivity.reduce((a, s) => a + s.n * s.k, 0);
  const { plan, treatments } = allocateFromSensitivity(sensitivity, rungs, budgetBytes(req.budget, linearParams));
  return { plan: { ...plan, target: req.target.id, probe: probeRung(rungs, req.probe)?.id ?? rungs.find((r) => r.treatment.kind === 'lowrank')?.id ?? '', sensitivity: { samples: req.n, tokens: req.n * req.T } }, treatments, sensitivity };
}
