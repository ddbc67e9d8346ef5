/**
 * Low-rank linears (edgeq checkpoints: W ≈ U·V) in the exporters. No export format holds the two factors,
 * so the rule is the same for every target (GGUF, ONNX, QNN, Snapdragon; GPTQ/AWQ refuse outright):
 *
 *   - without --allow-requantize: refused before anything is written, naming the first low-rank linear and
 *     the fix (UsageError E_EXPORT_LOWRANK / E_GGUF_LOWRANK);
 *   - with it: each low-rank linear is expanded to its dense product Û·V̂ (model/lowrank-product.ts, exactly
 *     the runtime's dequantized reference) and then treated like a float weight of the target: quantized by
 *     plain min/max RTN onto the target's grid (per channel where the group size does not divide k), the
 *     relative weight error ‖Ŵ − Û·V̂‖ / ‖Û·V̂‖ reported per linear; float targets keep the product as is.
 */
import { UsageError } from '../core/errors.js';
import type { WeightSource } from '../model/weight-source.js';
import { fallbackGrid, qtypeFor } from '../qtypes/registry.js';
import type { GridSpec, QuantizedWeight } from '../qtypes/types.js';

export interface LowRankTensorRef {
  name: string;
  rank: number;
}

export interface LowRankExpansion {
  weight: string;
  rank: number;
  /** Quant type the product was quantized to, or 'float' (kept as the fp32 product). */
  to: string;
  /** ‖Ŵ − Û·V̂‖ / ‖Û·V̂‖ (0 for 'float'). */
  relError: number;
}

/** The low-rank linears of a weight source, in tensor order. */
export function lowRankTensors(src: Pick<WeightSource, 'tensors'>): LowRankTensorRef[] {
  const out: LowRankTensorRef[] = [];
  for (const [name, t] of src.tensors) if (t.lowRank) out.push({ name, rank: t.lowRank.rank });
  return out;
}

/** Throws E_EXPORT_LOWRANK when `src` has low-rank linears; `expandTo` says what --allow-requantize would do. */
export function refuseLowRank(target: string, src: Pick<WeightSource, 'tensors'>, expandTo: string): void {
  const lr = lowRankTensors(src);
  if (lr.length === 0) return;
  throw new UsageError(
    'E_EXPORT_LOWRANK',
    `--target ${target}: ${lr.length} linears (e.g. ${lr[0]!.name}, rank ${lr[0]!.rank}) are stored as low-rank factors U·V, which ${target} cannot hold`,
    `pass --allow-requantize to expand each to the dense U·V and ${expandTo} (lossy; the error is reported per linear), or quantize without low-rank`,
  );
}

/**
 * `src` with every low-rank linear read as a quantized weight: its product Û·V̂ (readF32) quantized onto
 * `grid` (per channel when the group size does not divide k). Other tensors pass through. Each expansion is
 * recorded in `report`.
 */
export function expandLowRankSource(src: WeightSource, grid: GridSpec, report: LowRankExpansion[]): WeightSource {
  const lr = new Map(lowRankTensors(src).map((t) => [t.name, t.rank]));
  if (lr.size === 0) return src;
  return {
    kind: src.kind,
    metadata: src.metadata,
    tensors: src.tensors,
    readF32: (name) => src.readF32(name),
    readLowRank: (name) => src.readLowRank(name),
    close: () => src.close(),
    async readQuantized(name: string): Promise<QuantizedWeight | null> {
      const rank = lr.get(name);
      if (rank === undefined) return src.readQuantized(name);
      const [n, k] = src.tensors.get(name)!.shape as [number, number];
      const w = await src.readF32(name);
      const qt = qtypeFor(fallbackGrid(grid, k));
      const q = qt.quantizeRef(w, n, k, name);
      const back = qt.dequantize(q);
      let num = 0;
      let den = 0;
      for (let i = 0; i < w.length; i++) {
        num += (back[i]! - w[i]!) ** 2;
        den += w[i]! * w[i]!;
      }
      report.push({ weight: name, rank, to: q.qtype, relError: den > 0 ? Math.sqrt(num / den) : 0 });
      return q;
    },
  };
}
