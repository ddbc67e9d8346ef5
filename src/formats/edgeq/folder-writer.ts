/**
 * Plumbing shared by the edgeq, GPTQ and AWQ checkpoint writers: one atomic output folder holding one
 * streamed `model.safetensors` (metadata written at the end) plus JSON and side files. Any failure in
 * any step deletes the temporary folder; the destination only appears, complete, on finish().
 *
 * With `partial` the output is resumable: it is written into the fixed `<dest>.partial` folder, and
 * checkpoint() flushes model.safetensors and says where it stands (for the caller's journal); reopening
 * with `partial.resumeFrom` continues after that point (see stream-writer.ts and atomic-dir.ts).
 */
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { EdgeqError } from '../../core/errors.js';
import type { TensorData, TensorSpec } from '../safetensors/writer.js';
import { openAtomicDir, type AtomicDir, type AtomicDirOptions } from './atomic-dir.js';
import { checkDenseForF16 } from './plan.js';
import { copyModelSideFiles } from './side-files.js';
import { DeferredHeaderSafetensorsWriter, type DataCheckpoint, type PartialFileOptions } from './stream-writer.js';

export const MODEL_FILE = 'model.safetensors';

export class PlannedFolderWriter {
  private done = false;
  /** Elements of the current dense tensor written so far (for chunked writes and error indices). */
  private denseProgress = new Map<string, number>();

  private constructor(
    private readonly dir: AtomicDir,
    private readonly st: DeferredHeaderSafetensorsWriter,
    private readonly specs: ReadonlyMap<string, TensorSpec>,
  ) {}

  /** Open the temp folder and declare every tensor of model.safetensors. */
  static async create(
    dest: string,
    specs: readonly TensorSpec[],
    opts: Omit<AtomicDirOptions, 'partial'> & {
      metadataEstimate?: Readonly<Record<string, string>>;
      reserveBytes?: number;
      /** Resumable output (see the file comment). */
      partial?: PartialFileOptions;
    } = {},
  ): Promise<PlannedFolderWriter> {
    const dir = await openAtomicDir(dest, {
      overwrite: opts.overwrite,
      ...(opts.partial ? { partial: { resume: opts.partial.resumeFrom !== undefined, keep: [MODEL_FILE] } } : {}),
    });
    try {
      const st = await DeferredHeaderSafetensorsWriter.create(
        path.join(dir.tempPath, MODEL_FILE),
        specs,
        {
          ...(opts.metadataEstimate ? { metadataEstimate: opts.metadataEstimate } : {}),
          ...(opts.reserveBytes !== undefined ? { reserveBytes: opts.reserveBytes } : {}),
          ...(opts.partial ? { partial: opts.partial } : {}),
        },
      );
      return new PlannedFolderWriter(dir, st, new Map(specs.map((s) => [s.name, s])));
    } catch (err) {
      await dir.abort();
      throw err;
    }
  }

  /** Final destination folder. */
  get path(): string {
    return this.dir.path;
  }

  /** Temporary folder being filled (extra files written here are part of the output). */
  get tempPath(): string {
    return this.dir.tempPath;
  }

  /** Name of the safetensors tensor expected next. */
  get nextTensor(): string | undefined {
    return this.st.nextTensor;
  }

  async writeTensor(name: string, data: TensorData): Promise<void> {
    await this.guard(() => this.st.writeTensor(name, data));
  }

  /**
   * Write (a chunk of) a dense float tensor in its declared dtype (F16 values are range-checked so
   * nothing silently becomes Inf). Chunks of one tensor follow each other in element order.
   */
  async writeDense(name: string, data: Float32Array): Promise<void> {
    await this.guard(async () => {
      const spec = this.specs.get(name);
      if (!spec) throw new EdgeqError('E_WRITER_ORDER', `tensor '${name}' is not in the plan`);
      if (spec.dtype !== 'F16' && spec.dtype !== 'F32') throw new EdgeqError('E_WRITER_ORDER', `tensor '${name}' is not dense`);
      if (!(data instanceof Float32Array)) throw new EdgeqError('E_TENSOR_DATA', `dense tensor '${name}' must be a Float32Array`);
      const offset = this.denseProgress.get(name) ?? 0;
      if (spec.dtype === 'F16') checkDenseForF16(name, data, offset);
      await this.st.writeTensor(name, data);
      this.denseProgress.set(name, offset + data.length);
    });
  }

  /**
   * Resumable output: flush model.safetensors (fsync) and return where it stands; from now on an abort
   * keeps the partial folder for --resume.
   */
  async checkpoint(): Promise<DataCheckpoint> {
    let cp: DataCheckpoint | undefined;
    await this.guard(async () => {
      cp = await this.st.checkpoint();
      this.dir.markDurable();
    });
    return cp!;
  }

  /** Write a JSON file (2-space indent, trailing newline) into the output folder. */
  async writeJson(relName: string, value: unknown): Promise<void> {
    await this.guard(() => writeFileSynced(path.join(this.dir.tempPath, relName), `${JSON.stringify(value, null, 2)}\n`));
  }

  /** Copy tokenizer/generation files from the source model folder (see copyModelSideFiles). */
  async copySideFiles(srcDir: string): Promise<string[]> {
    let copied: string[] = [];
    await this.guard(async () => {
      copied = await copyModelSideFiles(srcDir, this.dir.tempPath);
    });
    return copied;
  }

  /** Finish model.safetensors with `metadata`, then rename the folder into place. */
  async finish(metadata: Readonly<Record<string, string>>): Promise<void> {
    await this.guard(async () => {
      await this.st.finish(metadata);
      await this.dir.commit();
      this.done = true;
    });
  }

  /** Discard the temp folder (the destination is left as it was). */
  async abort(): Promise<void> {
    this.done = true;
    await this.st.abort().catch(() => undefined);
    await this.dir.abort();
  }

  /** Run a step; on failure abort everything and rethrow. */
  async guard(step: () => Promise<void>): Promise<void> {
    if (this.done) throw new EdgeqError('E_WRITER_STATE', `checkpoint writer for ${this.dir.path} is already finished or aborted`);
    try {
      await step();
    } catch (err) {
      await this.abort();
      throw err;
    }
  }
}

async function writeFileSynced(file: string, text: string): Promise<void> {
  const fh = await fsp.open(file, 'wx');
  try {
    await fh.writeFile(text, 'utf8');
    await fh.sync();
  } finally {
    await fh.close();
  }
}
