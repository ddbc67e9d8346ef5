/**
 * Streaming writer of an edgeq checkpoint folder (layout: see metadata.ts):
 *
 *   const w = await EdgeqCheckpointWriter.create(outDir, { plan, sourceDir, provenance });
 *   for (const entry of plan) entry.kind === 'quantized' ? await w.writeQuantized(entry.name, q)
 *                           : entry.kind === 'lowrank' ? await w.writeLowRank(entry.name, { u, v })
 *                                                       : await w.writeDense(entry.name, data);
 *   await w.finish({ provenance });   // provenance may be given (or completed) here
 *
 * Tensors are written in plan order; dense tensors may be written in several chunks. Everything goes
 * into a temporary sibling folder renamed into place by finish(); any error (or abort()) deletes it and
 * leaves an existing destination untouched. An existing non-empty destination is refused unless
 * `overwrite: true`.
 */
import { EdgeqError } from '../../core/errors.js';
import type { QuantizedWeight } from '../../qtypes/types.js';
import { packCodes } from '../bitpack.js';
import type { TensorSpec } from '../safetensors/writer.js';
import { PlannedFolderWriter } from './folder-writer.js';
import type { DataCheckpoint, PartialFileOptions } from './stream-writer.js';
import { lowRankTypeOf, type EdgeqLowRankType } from './lowrank-meta.js';
import {
  EDGEQ_FORMAT_VERSION_BASE,
  EDGEQ_FORMAT_VERSION_LOWRANK,
  META_FORMAT_VERSION,
  META_LOWRANK,
  META_PROVENANCE,
  META_QTYPES,
  edgeqTensorNames,
  edgeqTensorShapes,
  type EdgeqProvenance,
  type EdgeqTensorQType,
} from './metadata.js';
import {
  checkPlan,
  checkQuantizedWeight,
  lowRankFactorEntry,
  modulePrefix,
  type DensePlanEntry,
  type LowRankPlanEntry,
  type QuantizedPlanEntry,
  type TensorPlanEntry,
} from './plan.js';
import { resolveSourceConfig, type ModelSource } from './side-files.js';

export interface EdgeqWriterOptions extends ModelSource {
  /** Every tensor of the output, in write order. */
  plan: readonly TensorPlanEntry[];
  /** Provenance known at start (finish() may replace it). */
  provenance?: EdgeqProvenance;
  /** Extra `__metadata__` entries (string values; keys must not start with 'edgeq.'). */
  metadata?: Readonly<Record<string, string>>;
  /** Replace an existing output folder once the new one is complete. */
  overwrite?: boolean;
  /** Copy tokenizer/generation files from sourceDir (default true when sourceDir is given). */
  copySideFiles?: boolean;
  /** Resumable output in `<dir>.partial` (see folder-writer.ts); `resumeFrom` continues an earlier run. */
  partial?: PartialFileOptions;
}

export class EdgeqCheckpointWriter {
  private constructor(
    private readonly out: PlannedFolderWriter,
    private readonly plan: ReadonlyMap<string, TensorPlanEntry>,
    private readonly qtypes: Record<string, EdgeqTensorQType>,
    private readonly lowRank: Record<string, EdgeqLowRankType>,
    private readonly opts: EdgeqWriterOptions,
    private readonly config: Record<string, unknown>,
  ) {}

  static async create(dir: string, opts: EdgeqWriterOptions): Promise<EdgeqCheckpointWriter> {
    const plan = checkPlan(opts.plan);
    for (const k of Object.keys(opts.metadata ?? {})) {
      if (k.startsWith('edgeq.') || k === 'format') throw new EdgeqError('E_METADATA', `metadata key '${k}' is reserved`);
    }
    const config = await resolveSourceConfig(opts);
    const qtypes: Record<string, EdgeqTensorQType> = {};
    const lowRank: Record<string, EdgeqLowRankType> = {};
    const specs: TensorSpec[] = [];
    const declare = (e: QuantizedPlanEntry | DensePlanEntry): void => {
      if (e.kind === 'dense') {
        specs.push({ name: e.name, dtype: e.dtype ?? 'F16', shape: [...e.shape] });
        return;
      }
      const names = edgeqTensorNames(modulePrefix(e.name));
      const shapes = edgeqTensorShapes(qtypeOf(e));
      specs.push({ name: names.qweight, dtype: 'U8', shape: shapes.qweight });
      specs.push({ name: names.scales, dtype: 'F16', shape: shapes.scales });
      if (shapes.qzeros) specs.push({ name: names.qzeros, dtype: 'U8', shape: shapes.qzeros });
      if (shapes.gIdx) specs.push({ name: names.gIdx, dtype: 'I32', shape: shapes.gIdx });
    };
    for (const e of opts.plan) {
      if (e.kind === 'lowrank') {
        lowRank[e.name] = lowRankTypeOf(e);
        declare(lowRankFactorEntry(e, 'u'));
        declare(lowRankFactorEntry(e, 'v'));
        continue;
      }
      if (e.kind === 'quantized') qtypes[e.name] = qtypeOf(e);
      declare(e);
    }
    const estimate = buildMetadata(qtypes, lowRank, opts.provenance, opts.metadata);
    const out = await PlannedFolderWriter.create(dir, specs, {
      overwrite: opts.overwrite === true,
      metadataEstimate: estimate,
      ...(opts.partial ? { partial: opts.partial } : {}),
    });
    return new EdgeqCheckpointWriter(out, plan, qtypes, lowRank, opts, config);
  }

  /** Destination folder (appears on finish). */
  get path(): string {
    return this.out.path;
  }

  /** Temporary folder being written; extra files put here become part of the output. */
  get tempPath(): string {
    return this.out.tempPath;
  }

  /** Write quantized weight `name` (its plan entry's turn in plan order). */
  async writeQuantized(name: string, q: QuantizedWeight): Promise<void> {
    await this.out.guard(async () => {
      const e = this.plan.get(name);
      if (!e || e.kind !== 'quantized') {
        throw new EdgeqError('E_WRITER_ORDER', `'${name}' is not a quantized tensor of the plan`);
      }
      await this.putQuantized(e, q);
    });
  }

  /**
   * Write low-rank weight `name` (its plan entry's turn): U (n, r) then V (r, k). A Float32Array factor is
   * stored dense F16 (range-checked), a QuantizedWeight must match the plan entry's grid for that factor.
   */
  async writeLowRank(name: string, f: { u: Float32Array | QuantizedWeight; v: Float32Array | QuantizedWeight }): Promise<void> {
    await this.out.guard(async () => {
      const e = this.plan.get(name);
      if (!e || e.kind !== 'lowrank') throw new EdgeqError('E_WRITER_ORDER', `'${name}' is not a low-rank tensor of the plan`);
      for (const which of ['u', 'v'] as const) await this.putFactor(e, which, f[which]);
    });
  }

  private async putFactor(e: LowRankPlanEntry, which: 'u' | 'v', data: Float32Array | QuantizedWeight): Promise<void> {
    const fe = lowRankFactorEntry(e, which);
    const isDense = data instanceof Float32Array;
    if (fe.kind === 'dense') {
      if (!isDense) {
        throw new EdgeqError('E_WRITER_LOWRANK', `low-rank tensor '${e.name}': factor ${which} is planned dense F16 but a quantized ${data.qtype} weight was given`);
      }
      const want = fe.shape[0]! * fe.shape[1]!;
      if (data.length !== want) {
        throw new EdgeqError('E_WRITER_LOWRANK', `low-rank tensor '${e.name}': factor ${which} has ${data.length} values, expected ${fe.shape.join('·')} = ${want}`);
      }
      await this.out.writeDense(fe.name, data);
      return;
    }
    if (isDense) {
      throw new EdgeqError('E_WRITER_LOWRANK', `low-rank tensor '${e.name}': factor ${which} is planned ${fe.qtype} but dense values were given`, 'quantize the factor on the plan entry\'s grid first');
    }
    await this.putQuantized(fe, data);
  }

  private async putQuantized(e: QuantizedPlanEntry, q: QuantizedWeight): Promise<void> {
    checkQuantizedWeight(e, q);
    const names = edgeqTensorNames(modulePrefix(e.name));
    const packed = packCodes(q.codes, q.n, q.k, q.grid.bits);
    await this.out.writeTensor(names.qweight, packed);
    await this.out.writeTensor(names.scales, q.scales); // F16-representable: conversion is exact
    if (!q.grid.sym) await this.out.writeTensor(names.qzeros, q.zeros);
    if (q.gIdx) await this.out.writeTensor(names.gIdx, q.gIdx);
  }

  /**
   * Write dense tensor `name` (or the next chunk of it, in element order) in the plan's dtype.
   * `dtype`, if given, must match the plan.
   */
  async writeDense(name: string, data: Float32Array, dtype?: 'F16' | 'F32'): Promise<void> {
    await this.out.guard(async () => {
      const e = this.plan.get(name);
      if (!e || e.kind !== 'dense') throw new EdgeqError('E_WRITER_ORDER', `'${name}' is not a dense tensor of the plan`);
      const planned = e.dtype ?? 'F16';
      if (dtype !== undefined && dtype !== planned) {
        throw new EdgeqError('E_WRITER_DTYPE', `tensor '${name}' is planned as ${planned}, not ${dtype}`);
      }
      await this.out.writeDense(name, data);
    });
  }

  /** Resumable output: flush what is written (whole tensors) and say where the data file stands. */
  async checkpoint(): Promise<DataCheckpoint> {
    return this.out.checkpoint();
  }

  /** Write config.json and side files, the final metadata, and move the folder into place. */
  async finish(opts: { provenance?: EdgeqProvenance } = {}): Promise<void> {
    const provenance = opts.provenance ?? this.opts.provenance;
    await this.out.guard(async () => {
      if (!provenance) {
        throw new EdgeqError('E_PROVENANCE', 'an edgeq checkpoint needs provenance (method, calibration, ...)', 'pass provenance to create() or finish()');
      }
      const config = { ...this.config };
      config['quantization_config'] = {
        quant_method: 'edgeq',
        format_version: formatVersionOf(this.lowRank),
        method: provenance.method,
        qtypes: [...new Set(Object.values(this.qtypes).map((t) => t.qtype))].sort(),
        ...(Object.keys(this.lowRank).length > 0 ? { lowrank: Object.keys(this.lowRank).length } : {}),
      };
      await this.out.writeJson('config.json', config);
      if (this.opts.sourceDir && this.opts.copySideFiles !== false) await this.out.copySideFiles(this.opts.sourceDir);
    });
    await this.out.finish(buildMetadata(this.qtypes, this.lowRank, provenance, this.opts.metadata));
  }

  async abort(): Promise<void> {
    await this.out.abort();
  }
}

function qtypeOf(e: QuantizedPlanEntry): EdgeqTensorQType {
  return {
    qtype: e.qtype,
    bits: e.grid.bits,
    groupSize: e.grid.groupSize,
    sym: e.grid.sym,
    n: e.shape[0],
    k: e.shape[1],
    actOrder: e.actOrder === true,
  };
}

/** Version 1 unless the file holds low-rank linears (then 2, which older readers refuse). */
function formatVersionOf(lowRank: Record<string, EdgeqLowRankType>): number {
  return Object.keys(lowRank).length > 0 ? EDGEQ_FORMAT_VERSION_LOWRANK : EDGEQ_FORMAT_VERSION_BASE;
}

function buildMetadata(
  qtypes: Record<string, EdgeqTensorQType>,
  lowRank: Record<string, EdgeqLowRankType>,
  provenance: EdgeqProvenance | undefined,
  extra: Readonly<Record<string, string>> | undefined,
): Record<string, string> {
  const md: Record<string, string> = { format: 'pt', ...(extra ?? {}) };
  md[META_FORMAT_VERSION] = String(formatVersionOf(lowRank));
  md[META_QTYPES] = JSON.stringify(qtypes);
  if (Object.keys(lowRank).length > 0) md[META_LOWRANK] = JSON.stringify(lowRank);
  if (provenance) md[META_PROVENANCE] = JSON.stringify(provenance);
  return md;
}
