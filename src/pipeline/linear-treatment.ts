/**
 * The linears of a plan that are not quantized by the method (the ladder's fp16 and low-rank rungs,
 * `--method svd`): which extra calibration statistics a group of linears sharing one input needs (XᵀX
 * for SVD-LLM whitening, mean |x| for ASVD), and the solve + write of one such linear. The quantized ones
 * go through linear-quantizer.ts as before; when GPTQ already accumulates the group's Hessian
 * (2XᵀX/N — the whitening is invariant to the scale), the low-rank solve reads it before GPTQ inverts it.
 */
import { roundToF16 } from '../core/dtype.js';
import { UsageError } from '../core/errors.js';
import type { TensorPlanEntry } from '../formats/edgeq/plan.js';
import type { MatmulBackend } from '../kernels/backend.js';
import { describeTreatment, type ResolvedTreatment } from '../ladder/rungs.js';
import { MeanAbsAccumulator } from '../lowrank/whitening.js';
import { HessianAccumulator } from '../quantizers/hessian.js';
import type { CheckpointSink } from './checkpoint-sink.js';
import { HessianStats, type LayerStats } from './linear-quantizer.js';
import { solveLowRank } from './lowrank-solve.js';

export interface GroupNeeds {
  /** Some linear of the group is quantized by the method. */
  quantized: boolean;
  xtx: boolean;
  meanAbs: boolean;
}

export function groupNeeds(entries: readonly TensorPlanEntry[], treatments: ReadonlyMap<string, ResolvedTreatment> | undefined): GroupNeeds {
  const needs: GroupNeeds = { quantized: false, xtx: false, meanAbs: false };
  for (const e of entries) {
    if (e.kind === 'quantized') needs.quantized = true;
    if (e.kind !== 'lowrank') continue;
    const t = treatments?.get(e.name);
    if (!t || t.kind !== 'lowrank') throw new UsageError('E_PLAN', `low-rank tensor '${e.name}' has no low-rank treatment in the request`);
    if (t.whitening === 'svdllm') needs.xtx = true;
    if (t.whitening === 'asvd') needs.meanAbs = true;
  }
  return needs;
}

export interface ExtraStats {
  add(x: Float32Array, rows: number): void;
  xtx(): Float64Array | undefined;
  meanAbs(): Float64Array | undefined;
}

/** The statistics `needs` asks for beyond the method's own `methodStats` (whose Hessian is reused). */
export function createExtraStats(needs: GroupNeeds, k: number, backend: MatmulBackend, methodStats: LayerStats | null): ExtraStats {
  const shared = methodStats instanceof HessianStats ? methodStats : null;
  const own = needs.xtx && !shared ? new HessianAccumulator(k, { backend }) : null;
  const abs = needs.meanAbs ? new MeanAbsAccumulator(k) : null;
  return {
    add(x, rows) {
      own?.addBatch(x, rows);
      abs?.addBatch(x, rows);
    },
    xtx: () => (!needs.xtx ? undefined : shared ? shared.xtx() : own!.H),
    meanAbs: () => abs?.mean(),
  };
}

/** Solves and writes one dense (F16) or low-rank linear; returns the weight it now computes with. */
export async function solveUnquantized(
  entry: TensorPlanEntry,
  t: ResolvedTreatment | undefined,
  w: Float32Array,
  stats: ExtraStats | null,
  backend: MatmulBackend,
  writer: CheckpointSink,
): Promise<{ wq: Float32Array; qtype: string }> {
  if (entry.kind === 'dense') {
    await writer.writeDense(entry.name, w);
    return { wq: roundToF16(w), qtype: 'F16' };
  }
  if (entry.kind !== 'lowrank' || !t || t.kind !== 'lowrank') throw new UsageError('E_PLAN', `tensor '${entry.name}' is neither quantized, dense nor low-rank`);
  const [n, k] = entry.shape;
  const sol = solveLowRank(w, n, k, t, { xtx: stats?.xtx(), meanAbs: stats?.meanAbs() }, { backend, name: entry.name });
  await writer.writeLowRank(entry.name, sol.factors);
  return { wq: sol.wq, qtype: describeTreatment(t) };
}
