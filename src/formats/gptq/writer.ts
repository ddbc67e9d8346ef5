/**
 * Whole-model AutoGPTQ / GPTQModel v1 ("gptq") checkpoint writer. Per quantized linear `<m>.weight`:
 * `<m>.qweight`, `<m>.qzeros`, `<m>.scales`, `<m>.g_idx` (layout: pack.ts); every other tensor fp16
 * under its HF name; config.json gains `quantization_config` and quantize_config.json holds the same
 * dict (AutoGPTQ reads quantize_config.json first; transformers/optimum read config.json).
 *
 * GPTQ's config is model-wide, so every quantized linear must share bits, group size and symmetry, and
 * every decoder-block linear must be quantized (a dense one would be looked for as qweight).
 */
import { UnsupportedError } from '../../core/errors.js';
import type { QuantizedWeight } from '../../qtypes/types.js';
import {
  PackedExportWriter,
  checkQuantizedInBlocks,
  denseBlockLinears,
  edgeqPackageVersion,
  type ExportLayout,
  type ExportWriterOptions,
} from '../edgeq/export-writer.js';
import { describeGrid, modulePrefix, numGroupsOf, type QuantizedPlanEntry, type TensorPlanEntry } from '../edgeq/plan.js';
import type { TensorSpec } from '../safetensors/writer.js';
import { checkGptqShape, packGptqV1 } from './pack.js';

export interface GptqWriterOptions extends ExportWriterOptions {
  /** Extra keys for quantization_config.meta (e.g. damp_percent, true_sequential, static_groups, mse). */
  meta?: Record<string, unknown>;
}

/** The `quantization_config` dict for a plan (also the content of quantize_config.json). */
export function gptqQuantizationConfig(plan: readonly TensorPlanEntry[], meta: Record<string, unknown> = {}): Record<string, unknown> {
  const q = checkGptqPlan(plan);
  const g = q[0]!.grid;
  return {
    bits: g.bits,
    group_size: g.groupSize,
    desc_act: q.some((e) => e.actOrder === true),
    sym: g.sym,
    lm_head: false,
    quant_method: 'gptq',
    checkpoint_format: 'gptq',
    pack_dtype: 'int32',
    meta: {
      ...meta,
      quantizer: [`edgeq:${edgeqPackageVersion()}`],
    },
  };
}

/** Check a plan can be stored as GPTQ; returns its quantized entries. */
export function checkGptqPlan(plan: readonly TensorPlanEntry[]): QuantizedPlanEntry[] {
  const q = checkQuantizedInBlocks('GPTQ', plan);
  const g0 = q[0]!.grid;
  for (const e of q) {
    if (e.grid.bits !== g0.bits || e.grid.groupSize !== g0.groupSize || e.grid.sym !== g0.sym) {
      throw new UnsupportedError(
        'E_GPTQ_MIXED',
        `GPTQ checkpoints use one grid for all layers; '${e.name}' has ${describeGrid(e.grid)} but '${q[0]!.name}' has ${describeGrid(g0)}`,
        'use one quant type for every layer, or export the edgeq format for mixed precision',
      );
    }
    checkGptqShape(e.shape[0], e.shape[1], e.grid.bits, e.name);
  }
  const dense = denseBlockLinears(plan);
  if (dense.length > 0) {
    throw new UnsupportedError(
      'E_GPTQ_DENSE_LINEAR',
      `GPTQ loaders expect every decoder-block linear quantized, but ${dense.length} are dense (e.g. '${dense[0]!.name}')`,
      'quantize every block linear for GPTQ export, or export the edgeq or AWQ format',
    );
  }
  return q;
}

/** The GPTQ export layout; `meta` goes into quantization_config.meta. */
export function gptqLayout(meta: Record<string, unknown> = {}): ExportLayout {
  return {
    format: 'GPTQ',
    checkPlan: (plan) => void checkGptqPlan(plan),
    tensorsFor(e: QuantizedPlanEntry): TensorSpec[] {
      const [n, k] = e.shape;
      const bits = e.grid.bits;
      const g = numGroupsOf(e.grid, k);
      const p = modulePrefix(e.name);
      return [
        { name: `${p}.qweight`, dtype: 'I32', shape: [(k * bits) / 32, n] },
        { name: `${p}.qzeros`, dtype: 'I32', shape: [g, (n * bits) / 32] },
        { name: `${p}.scales`, dtype: 'F16', shape: [g, n] },
        { name: `${p}.g_idx`, dtype: 'I32', shape: [k] },
      ];
    },
    pack(e: QuantizedPlanEntry, q: QuantizedWeight) {
      const t = packGptqV1(q, e.name);
      const p = modulePrefix(e.name);
      return [
        { name: `${p}.qweight`, data: t.qweight },
        { name: `${p}.qzeros`, data: t.qzeros },
        { name: `${p}.scales`, data: t.scales },
        { name: `${p}.g_idx`, data: t.g_idx },
      ];
    },
    configFiles(source, plan) {
      const qc = gptqQuantizationConfig(plan, meta);
      return {
        'config.json': { ...source, torch_dtype: 'float16', quantization_config: qc },
        'quantize_config.json': qc,
      };
    },
  };
}

/**
 *   const w = await GptqCheckpointWriter.create(outDir, { plan, sourceDir, meta: { damp_percent: 0.01 } });
 *   ... w.writeQuantized(name, q) / w.writeDense(name, data) in plan order ...
 *   await w.finish();
 */
export const GptqCheckpointWriter = {
  create(dir: string, opts: GptqWriterOptions): Promise<PackedExportWriter> {
    return PackedExportWriter.create(gptqLayout(opts.meta ?? {}), dir, opts);
  },
};
