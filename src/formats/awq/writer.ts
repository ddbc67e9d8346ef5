/**
 * Whole-model AutoAWQ GEMM checkpoint writer. Per quantized linear `<m>.weight`: `<m>.qweight`,
 * `<m>.qzeros`, `<m>.scales` (layout: pack.ts); every other tensor fp16 under its HF name; config.json
 * gains `quantization_config` = {quant_method: "awq", zero_point: true, group_size, bits: 4,
 * version: "gemm", modules_to_not_convert}.
 *
 * zero_point is always true: symmetric weights are stored with explicit zero points of 8 (see pack.ts).
 * Decoder-block linears kept dense are listed in modules_to_not_convert by their in-block name
 * (e.g. "mlp.down_proj"): AutoAWQ matches those names as substrings of each block's linear names and
 * transformers of the full module names, so a role must be dense in every layer, and no quantized
 * module name may contain it.
 */
import { UnsupportedError } from '../../core/errors.js';
import type { QuantizedWeight } from '../../qtypes/types.js';
import {
  PackedExportWriter,
  checkQuantizedInBlocks,
  denseBlockLinears,
  type ExportLayout,
  type ExportWriterOptions,
} from '../edgeq/export-writer.js';
import { effectiveGroupSize, modulePrefix, type QuantizedPlanEntry, type TensorPlanEntry } from '../edgeq/plan.js';
import type { TensorSpec } from '../safetensors/writer.js';
import { checkAwqShape, packAwqGemm } from './pack.js';

export type AwqWriterOptions = ExportWriterOptions;

/** Check a plan can be stored as AWQ GEMM; returns the quantization_config dict. */
export function awqQuantizationConfig(plan: readonly TensorPlanEntry[]): Record<string, unknown> {
  const q = checkQuantizedInBlocks('AWQ', plan);
  const g0 = q[0]!.grid.groupSize;
  for (const e of q) {
    checkAwqShape(
      { n: e.shape[0], k: e.shape[1], bits: e.grid.bits, groupSize: effectiveGroupSize(e.grid, e.shape[1]), actOrder: e.actOrder === true },
      e.name,
    );
    if (e.grid.groupSize !== g0) {
      throw new UnsupportedError(
        'E_AWQ_MIXED',
        `AWQ checkpoints use one group size; '${e.name}' has ${e.grid.groupSize}, '${q[0]!.name}' has ${g0}`,
        'use one group size for every layer, or export the edgeq format',
      );
    }
  }
  return {
    quant_method: 'awq',
    zero_point: true,
    group_size: g0,
    bits: 4,
    version: 'gemm',
    modules_to_not_convert: modulesToNotConvert(plan, q),
  };
}

function modulesToNotConvert(plan: readonly TensorPlanEntry[], quantized: readonly QuantizedPlanEntry[]): string[] | null {
  const roles = [...new Set(denseBlockLinears(plan).map((d) => d.role))].sort();
  if (roles.length === 0) return null;
  for (const role of roles) {
    const clash = quantized.find((e) => modulePrefix(e.name).includes(role));
    if (clash) {
      throw new UnsupportedError(
        'E_AWQ_DENSE_LINEAR',
        `AWQ can only keep a block linear dense in every layer: '${role}' is dense in some layers but '${clash.name}' is quantized`,
        'quantize that linear in every layer or in none, or export the edgeq format',
      );
    }
  }
  return roles;
}

export function awqLayout(): ExportLayout {
  return {
    format: 'AWQ',
    checkPlan: (plan) => void awqQuantizationConfig(plan),
    tensorsFor(e: QuantizedPlanEntry): TensorSpec[] {
      const [n, k] = e.shape;
      const g = k / effectiveGroupSize(e.grid, k);
      const p = modulePrefix(e.name);
      return [
        { name: `${p}.qweight`, dtype: 'I32', shape: [k, n / 8] },
        { name: `${p}.qzeros`, dtype: 'I32', shape: [g, n / 8] },
        { name: `${p}.scales`, dtype: 'F16', shape: [g, n] },
      ];
    },
    pack(e: QuantizedPlanEntry, q: QuantizedWeight) {
      const t = packAwqGemm(q, e.name);
      const p = modulePrefix(e.name);
      return [
        { name: `${p}.qweight`, data: t.qweight },
        { name: `${p}.qzeros`, data: t.qzeros },
        { name: `${p}.scales`, data: t.scales },
      ];
    },
    configFiles(source, plan) {
      return { 'config.json': { ...source, torch_dtype: 'float16', quantization_config: awqQuantizationConfig(plan) } };
    },
  };
}

/**
 *   const w = await AwqCheckpointWriter.create(outDir, { plan, sourceDir });
 *   ... w.writeQuantized(name, q) / w.writeDense(name, data) in plan order ...
 *   await w.finish();
 */
export const AwqCheckpointWriter = {
  create(dir: string, opts: AwqWriterOptions): Promise<PackedExportWriter> {
    return PackedExportWriter.create(awqLayout(), dir, opts);
  },
};
