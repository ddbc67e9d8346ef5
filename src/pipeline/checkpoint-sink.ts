/**
 * Where the quantization pipeline writes: one small factory over the three checkpoint writers that share
 * writeQuantized / writeDense / finish / abort — edgeq's own format, AutoGPTQ v1 ("gptq") and AutoAWQ GEMM.
 * Only the edgeq format holds low-rank linears (writeLowRank; layout in formats/edgeq/metadata.ts, bytes
 * by lowRankEntryBytes) and fp16 block linears mixed with quantized ones; checkFormatPlan refuses both for
 * AutoGPTQ (whose loaders replace every block linear) and low-rank for AutoAWQ (which keeps a linear fp16
 * only when it is fp16 in every layer, modules_to_not_convert), naming the tensor and `--format edgeq`.
 *
 * The format is chosen before any work: `checkFormatPlan` refuses a plan the layout cannot hold (with the
 * writers' own checks: checkGptqPlan, awqQuantizationConfig → checkAwqShape), and `formatEntryBytes`
 * counts a tensor's stored bytes in the chosen layout so the plan's byte total is the file's exactly.
 * GPTQ v1 stores zero − 1, so asymmetric zero points must be ≥ 1 (`minZeroFor`); the linear quantizer
 * honours that (pipeline/linear-quantizer.ts). Provenance goes into the safetensors `__metadata__`
 * (`edgeq.provenance`) in every format; only the edgeq format can add per-layer errors at the end (the
 * export writers fix their header before the first tensor).
 */
import { EdgeqError, UnsupportedError } from '../core/errors.js';
import { AwqCheckpointWriter, awqLayout, awqQuantizationConfig } from '../formats/awq/writer.js';
import type { ExportLayout } from '../formats/edgeq/export-writer.js';
import type { DataCheckpoint, PartialFileOptions } from '../formats/edgeq/stream-writer.js';
import { denseBlockLinears } from '../formats/edgeq/export-writer.js';
import { EdgeqCheckpointWriter, type EdgeqProvenance, type QuantizedPlanEntry, type TensorPlanEntry } from '../formats/edgeq/index.js';
import type { LowRankPlanEntry } from '../formats/edgeq/plan.js';
import { checkGptqPlan, GptqCheckpointWriter, gptqLayout } from '../formats/gptq/writer.js';
import type { TensorSpec } from '../formats/safetensors/writer.js';
import type { QuantizedWeight } from '../qtypes/types.js';

export const CHECKPOINT_FORMATS = ['edgeq', 'autogptq', 'autoawq'] as const;
export type CheckpointFormat = (typeof CHECKPOINT_FORMATS)[number];

const FORMAT_NAME: Record<CheckpointFormat, string> = { edgeq: 'edgeq', autogptq: 'AutoGPTQ', autoawq: 'AutoAWQ' };

/** What the pipeline writes into; the same calls for every format. */
export interface CheckpointSink {
  readonly format: CheckpointFormat;
  writeQuantized(name: string, q: QuantizedWeight): Promise<void>;
  writeDense(name: string, data: Float32Array): Promise<void>;
  /**
   * Low-rank linear `name` (plan entry kind 'lowrank'): U (n, r) and V (r, k). A Float32Array factor is
   * stored dense F16, a QuantizedWeight must be on the plan entry's grid for it. Edgeq format only.
   */
  writeLowRank(name: string, f: { u: Float32Array | QuantizedWeight; v: Float32Array | QuantizedWeight }): Promise<void>;
  /** Resumable output only: flush the tensors written so far and say where the data file stands. */
  checkpoint(): Promise<DataCheckpoint>;
  /** Complete the folder (config, side files, metadata) and move it into place. */
  finish(provenance: EdgeqProvenance): Promise<void>;
  abort(): Promise<void>;
}

export interface SinkOptions {
  plan: readonly TensorPlanEntry[];
  sourceDir: string;
  overwrite?: boolean;
  /** Known at start; the edgeq format replaces it (with layer errors) at finish. */
  provenance: EdgeqProvenance;
  /** GPTQ quantization_config.meta extras (damp_percent, true_sequential, ...). */
  gptqMeta?: Record<string, unknown>;
  /** Resumable output in `<outDir>.partial` (pipeline/resume/). */
  partial?: PartialFileOptions;
}

/** Dense storage dtype the format forces (null: the plan chooses). GPTQ/AWQ keep every dense tensor fp16. */
export function forcedDenseDtype(format: CheckpointFormat): 'F16' | null {
  return format === 'edgeq' ? null : 'F16';
}

/** Smallest asymmetric zero point the format can store (GPTQ v1 writes zero − 1). */
export function minZeroFor(format: CheckpointFormat): 0 | 1 {
  return format === 'autogptq' ? 1 : 0;
}

function exportLayout(format: Exclude<CheckpointFormat, 'edgeq'>): ExportLayout {
  return format === 'autogptq' ? gptqLayout() : awqLayout();
}

const DTYPE_BYTES: Record<string, number> = { I32: 4, F16: 2, F32: 4, U8: 1 };

function specBytes(specs: readonly TensorSpec[]): number {
  let b = 0;
  for (const s of specs) b += s.shape.reduce((a, d) => a * d, 1) * DTYPE_BYTES[s.dtype]!;
  return b;
}

/**
 * Stored bytes of one quantized entry in an export layout (the edgeq format is counted by the registry;
 * its low-rank entries by lowRankEntryBytes). Low-rank entries have no export layout (checkFormatPlan refuses them).
 */
export function exportEntryBytes(format: Exclude<CheckpointFormat, 'edgeq'>, e: QuantizedPlanEntry | LowRankPlanEntry): number {
  if (e.kind === 'lowrank') throw lowRankFormatError(format, [e]);
  return specBytes(exportLayout(format).tensorsFor(e));
}

function lowRankFormatError(format: CheckpointFormat, lr: readonly LowRankPlanEntry[]): UnsupportedError {
  const e = lr[0]!;
  return new UnsupportedError(
    'E_FORMAT_LOWRANK',
    `--format ${format}: ${FORMAT_NAME[format]} checkpoints cannot hold low-rank linears, but '${e.name}' is planned as rank-${e.rank} factors${lr.length > 1 ? ` (${lr.length} low-rank linears)` : ''}`,
    `${FORMAT_NAME[format]} loaders replace every block linear with one packed module: use --format edgeq (low-rank and mixed linears), or quantize without low-rank`,
  );
}

/**
 * Refuse, before any work, a plan the format cannot hold. `fallbacks` (per-tensor per-channel grids from
 * --fallback) are named first: one-grid formats cannot mix them with the requested group size.
 */
export function checkFormatPlan(format: CheckpointFormat, plan: readonly TensorPlanEntry[], fallbacks: readonly { name: string; from: string; to: string }[] = []): void {
  if (format === 'edgeq') return;
  const lr = plan.filter((e): e is LowRankPlanEntry => e.kind === 'lowrank');
  if (lr.length > 0) throw lowRankFormatError(format, lr);
  const dense = denseBlockLinears(plan);
  if (format === 'autogptq' && dense.length > 0) {
    throw new UnsupportedError(
      'E_FORMAT_DENSE_LINEAR',
      `--format ${format}: AutoGPTQ loaders expect every decoder-block linear quantized, but '${dense[0]!.name}' is planned dense${dense.length > 1 ? ` (${dense.length} dense block linears)` : ''}`,
      'use --format edgeq (fp16 and quantized linears mixed), or quantize every block linear',
    );
  }
  const q = plan.filter((e): e is QuantizedPlanEntry => e.kind === 'quantized');
  const first = q[0];
  if (first && fallbacks.length > 0 && fallbacks.length < q.length) {
    const f = fallbacks[0]!;
    const k = q.find((e) => e.name === f.name)?.shape[1];
    throw new UnsupportedError(
      'E_FORMAT_MIXED_GRID',
      `--format ${format} stores one grid for every layer, but --fallback put '${f.name}' (k=${k}) on ${f.to} while the others use ${f.from}${fallbacks.length > 1 ? ` (${fallbacks.length} tensors fall back)` : ''}`,
      `use a --group-size that divides every layer's input width (or -1, per channel), or --format edgeq (mixed grids)`,
    );
  }
  try {
    if (format === 'autogptq') checkGptqPlan(plan);
    else awqQuantizationConfig(plan); // checkAwqShape on every entry: 4-bit, no act-order, N % 8, one group size
  } catch (err) {
    if (!(err instanceof EdgeqError)) throw err;
    throw new UnsupportedError(err.code, `--format ${format} cannot hold this plan: ${err.message}`, FORMAT_HINT[format]);
  }
}

const FORMAT_HINT: Record<Exclude<CheckpointFormat, 'edgeq'>, string> = {
  autogptq: 'AutoGPTQ holds one 2/3/4/8-bit grid for every block linear, in/out features divisible by 32/bits (32 for 3-bit): change --bits/--group-size, or use --format edgeq',
  autoawq: 'AutoAWQ holds 4-bit weights with one group size, no --act-order, out features divisible by 8: change --bits/--group-size/--act-order, or use --format autogptq or edgeq',
};

/** The writer for `format` at `outDir` (refuses an existing folder unless overwrite; nothing is written yet). */
export async function createCheckpointSink(format: CheckpointFormat, outDir: string, o: SinkOptions): Promise<CheckpointSink> {
  if (format === 'edgeq') {
    const w = await EdgeqCheckpointWriter.create(outDir, { plan: o.plan, sourceDir: o.sourceDir, overwrite: o.overwrite, provenance: o.provenance, partial: o.partial });
    return {
      format,
      writeQuantized: (name, q) => w.writeQuantized(name, q),
      writeDense: (name, data) => w.writeDense(name, data),
      writeLowRank: (name, f) => w.writeLowRank(name, f),
      checkpoint: () => w.checkpoint(),
      finish: (provenance) => w.finish({ provenance }),
      abort: () => w.abort(),
    };
  }
  if (!CHECKPOINT_FORMATS.includes(format)) throw new EdgeqError('E_FORMAT', `unknown checkpoint format '${String(format)}'`);
  checkFormatPlan(format, o.plan);
  const { layerErrors: _omit, ...known } = o.provenance;
  const opts = {
    plan: o.plan,
    sourceDir: o.sourceDir,
    overwrite: o.overwrite,
    metadata: { 'edgeq.provenance': JSON.stringify({ ...known, format: FORMAT_NAME[format] }) },
    partial: o.partial,
  };
  const w = format === 'autogptq' ? await GptqCheckpointWriter.create(outDir, { ...opts, meta: o.gptqMeta ?? {} }) : await AwqCheckpointWriter.create(outDir, opts);
  return {
    format,
    writeQuantized: (name, q) => w.writeQuantized(name, q),
    writeDense: (name, data) => w.writeDense(name, data),
    writeLowRank: (name) => {
      throw new UnsupportedError('E_FORMAT_LOWRANK', `--format ${format} cannot hold low-rank linear '${name}'`, 'use --format edgeq');
    },
    checkpoint: () => w.checkpoint(),
    finish: () => w.finish(),
    abort: () => w.abort(),
  };
}
