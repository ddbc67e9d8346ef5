/**
 * Generic streaming writer for Hugging Face "packed linear" checkpoints (GPTQ, AWQ): each quantized
 * linear becomes a few packed tensors under its module prefix, every other tensor is stored fp16 under
 * its HF name, and config.json gets a `quantization_config`. A format supplies an ExportLayout; the
 * plan, ordering, atomic folder and side-file handling are shared (see folder-writer.ts).
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { PACKAGE_ROOT } from '../../core/paths.js';
import { EdgeqError, UnsupportedError } from '../../core/errors.js';
import type { QuantizedWeight } from '../../qtypes/types.js';
import type { TensorData, TensorSpec } from '../safetensors/writer.js';
import { PlannedFolderWriter } from './folder-writer.js';
import type { DataCheckpoint, PartialFileOptions } from './stream-writer.js';
import { checkPlan, checkQuantizedWeight, type LowRankPlanEntry, type QuantizedPlanEntry, type TensorPlanEntry } from './plan.js';
import { resolveSourceConfig, type ModelSource } from './side-files.js';

export interface ExportLayout {
  /** Format name for messages, e.g. 'GPTQ'. */
  readonly format: string;
  /** Check the whole plan fits the format (uniform grid, shapes); throw UnsupportedError if not. */
  checkPlan(plan: readonly TensorPlanEntry[]): void;
  /** Stored tensors of one quantized linear. */
  tensorsFor(entry: QuantizedPlanEntry): TensorSpec[];
  /** Packed data of one quantized linear, in tensorsFor order. */
  pack(entry: QuantizedPlanEntry, q: QuantizedWeight): Array<{ name: string; data: TensorData }>;
  /** Files to write besides model.safetensors: name -> JSON value. */
  configFiles(sourceConfig: Record<string, unknown>, plan: readonly TensorPlanEntry[]): Record<string, unknown>;
}

export interface ExportWriterOptions extends ModelSource {
  /** Every tensor of the output, in write order. Dense dtypes are ignored (stored F16). */
  plan: readonly TensorPlanEntry[];
  overwrite?: boolean;
  /** Copy tokenizer/generation files from sourceDir (default true when sourceDir is given). */
  copySideFiles?: boolean;
  /** Extra safetensors `__metadata__` (string values). */
  metadata?: Readonly<Record<string, string>>;
  /** Resumable output in `<dir>.partial` (see folder-writer.ts). */
  partial?: PartialFileOptions;
}

export class PackedExportWriter {
  private constructor(
    private readonly layout: ExportLayout,
    private readonly out: PlannedFolderWriter,
    private readonly plan: ReadonlyMap<string, TensorPlanEntry>,
    private readonly opts: ExportWriterOptions,
    private readonly config: Record<string, unknown>,
  ) {}

  static async create(layout: ExportLayout, dir: string, opts: ExportWriterOptions): Promise<PackedExportWriter> {
    const plan = checkPlan(opts.plan);
    refuseLowRank(layout.format, opts.plan);
    layout.checkPlan(opts.plan);
    const config = await resolveSourceConfig(opts);
    const specs: TensorSpec[] = [];
    for (const e of opts.plan) {
      if (e.kind === 'dense') specs.push({ name: e.name, dtype: 'F16', shape: [...e.shape] });
      else if (e.kind === 'quantized') specs.push(...layout.tensorsFor(e));
    }
    // the metadata is known now: no header room needs reserving
    const out = await PlannedFolderWriter.create(dir, specs, {
      overwrite: opts.overwrite === true,
      metadataEstimate: exportMetadata(opts),
      reserveBytes: 0,
      ...(opts.partial ? { partial: opts.partial } : {}),
    });
    return new PackedExportWriter(layout, out, plan, opts, config);
  }

  get path(): string {
    return this.out.path;
  }

  get tempPath(): string {
    return this.out.tempPath;
  }

  async writeQuantized(name: string, q: QuantizedWeight): Promise<void> {
    await this.out.guard(async () => {
      const e = this.plan.get(name);
      if (!e || e.kind !== 'quantized') throw new EdgeqError('E_WRITER_ORDER', `'${name}' is not a quantized tensor of the plan`);
      checkQuantizedWeight(e, q);
      for (const t of this.layout.pack(e, q)) await this.out.writeTensor(t.name, t.data);
    });
  }

  /** Dense tensor `name` (or its next chunk), stored fp16 (values beyond fp16 range are refused). */
  async writeDense(name: string, data: Float32Array): Promise<void> {
    await this.out.guard(async () => {
      const e = this.plan.get(name);
      if (!e || e.kind !== 'dense') throw new EdgeqError('E_WRITER_ORDER', `'${name}' is not a dense tensor of the plan`);
      await this.out.writeDense(name, data);
    });
  }

  /** Resumable output: flush what is written and say where the data file stands. */
  async checkpoint(): Promise<DataCheckpoint> {
    return this.out.checkpoint();
  }

  async finish(): Promise<void> {
    await this.out.guard(async () => {
      const files = this.layout.configFiles(this.config, this.opts.plan);
      for (const [rel, value] of Object.entries(files)) await this.out.writeJson(rel, value);
      if (this.opts.sourceDir && this.opts.copySideFiles !== false) await this.out.copySideFiles(this.opts.sourceDir);
    });
    await this.out.finish(exportMetadata(this.opts));
  }

  async abort(): Promise<void> {
    await this.out.abort();
  }
}

function exportMetadata(opts: ExportWriterOptions): Record<string, string> {
  return { format: 'pt', ...(opts.metadata ?? {}) };
}

/** Layer roles of dense 2-D weights inside decoder blocks ('model.layers.<i>.<role>.weight'). */
export function denseBlockLinears(plan: readonly TensorPlanEntry[]): Array<{ name: string; layer: number; role: string }> {
  const out: Array<{ name: string; layer: number; role: string }> = [];
  for (const e of plan) {
    if (e.kind !== 'dense' || e.shape.length !== 2) continue;
    const m = /^model\.layers\.(\d+)\.(.+)\.weight$/.exec(e.name);
    if (m) out.push({ name: e.name, layer: Number(m[1]), role: m[2]! });
  }
  return out;
}

/**
 * GPTQ/AWQ layouts have no place for low-rank factors (their loaders replace every block linear with one
 * packed module): refuse a plan holding any, naming the first.
 */
export function refuseLowRank(format: string, plan: readonly TensorPlanEntry[]): void {
  const lr = plan.filter((e): e is LowRankPlanEntry => e.kind === 'lowrank');
  if (lr.length === 0) return;
  throw new UnsupportedError(
    'E_FORMAT_LOWRANK',
    `${format} checkpoints cannot hold low-rank linears, but '${lr[0]!.name}' is stored as rank-${lr[0]!.rank} factors${lr.length > 1 ? ` (${lr.length} low-rank linears)` : ''}`,
    'use --format edgeq (mixed and low-rank linears), or quantize without low-rank',
  );
}

/** Quantized entries must live in decoder blocks (GPTQ/AWQ loaders only convert block linears). */
export function checkQuantizedInBlocks(format: string, plan: readonly TensorPlanEntry[]): QuantizedPlanEntry[] {
  refuseLowRank(format, plan);
  const q = plan.filter((e): e is QuantizedPlanEntry => e.kind === 'quantized');
  if (q.length === 0) throw new EdgeqError('E_PLAN', `a ${format} checkpoint needs at least one quantized linear`);
  for (const e of q) {
    if (!/^model\.layers\.\d+\..+\.weight$/.test(e.name)) {
      throw new UnsupportedError(
        'E_PLAN',
        `${format} checkpoints quantize decoder-block linears only; '${e.name}' cannot be stored quantized`,
        'keep embeddings and lm_head dense for this format',
      );
    }
  }
  return q;
}

let cachedVersion: string | undefined;
/** edgeq's package version (for quantizer tags in configs). */
export function edgeqPackageVersion(): string {
  if (cachedVersion === undefined) {
    try {
      const pkg = JSON.parse(readFileSync(path.join(PACKAGE_ROOT, 'package.json'), 'utf8')) as { version?: unknown };
      cachedVersion = typeof pkg.version === 'string' ? pkg.version : 'unknown';
    } catch {
      cachedVersion = 'unknown';
    }
  }
  return cachedVersion;
}
