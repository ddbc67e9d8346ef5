/**
 * A checkpoint folder: one or more safetensors shards seen as one set of tensors.
 *
 * Which files: `model.safetensors.index.json` (its `weight_map`: tensor name -> shard file) when
 * present, else `model.safetensors`, else every `*.safetensors` in the folder (sorted). All shards'
 * headers are read at open time (only headers: data is read per tensor on demand). The index is
 * checked against the shards: every listed shard must exist and hold the tensors the index says;
 * a tensor name may appear in only one shard.
 */
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { FormatError, MissingFileError } from '../../core/errors.js';
import { FileByteSource } from '../../store/file-byte-source.js';
import { SAFETENSORS_LIMITS } from './limits.js';
import { SafetensorsFile } from './reader.js';
import type { ReadF32Options, TensorInfo, TensorReader } from './types.js';

export const SAFETENSORS_INDEX_FILE = 'model.safetensors.index.json';
export const SINGLE_SAFETENSORS_FILE = 'model.safetensors';

/** A parsed `model.safetensors.index.json`. */
export interface SafetensorsIndex {
  /** Tensor name -> shard file name (relative to the folder). */
  readonly weightMap: ReadonlyMap<string, string>;
  /** The index's own "metadata" object (e.g. total_size), if any. */
  readonly metadata: Readonly<Record<string, unknown>>;
}

export class SafetensorsCheckpoint implements TensorReader {
  private constructor(
    /** The folder (or the single file) the checkpoint was opened from. */
    readonly path: string,
    /** Shards in the order they were opened (sorted file names). */
    readonly shards: readonly SafetensorsFile[],
    readonly tensors: ReadonlyMap<string, TensorInfo>,
    /** The index file used, if any. */
    readonly index: SafetensorsIndex | undefined,
    private readonly byFile: ReadonlyMap<string, SafetensorsFile>,
  ) {}

  /** `__metadata__` of the first shard. */
  get metadata(): Readonly<Record<string, string>> {
    return this.shards[0]!.metadata;
  }

  /** Open a checkpoint folder (or a single .safetensors file). */
  static async open(dirOrFile: string): Promise<SafetensorsCheckpoint> {
    const st = await fsp.stat(dirOrFile).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') throw new MissingFileError('E_MODEL_NOT_FOUND', `no such model folder or file: ${dirOrFile}`);
      throw err;
    });
    let files: string[];
    let index: SafetensorsIndex | undefined;
    if (st.isFile()) {
      files = [dirOrFile];
    } else {
      const names = await fsp.readdir(dirOrFile);
      if (names.includes(SAFETENSORS_INDEX_FILE)) {
        const indexPath = path.join(dirOrFile, SAFETENSORS_INDEX_FILE);
        index = await readSafetensorsIndex(indexPath);
        const shardNames = [...new Set(index.weightMap.values())].sort();
        files = shardNames.map((n) => path.join(dirOrFile, n));
        for (const f of files) {
          if (!(await isFile(f))) {
            throw new MissingFileError(
              'E_MISSING_SHARD',
              `${indexPath} lists shard '${path.basename(f)}' but ${f} does not exist`,
              'the download is incomplete; fetch every shard the index names',
            );
          }
        }
      } else if (names.includes(SINGLE_SAFETENSORS_FILE)) {
        files = [path.join(dirOrFile, SINGLE_SAFETENSORS_FILE)];
      } else {
        files = names.filter((n) => n.endsWith('.safetensors')).sort().map((n) => path.join(dirOrFile, n));
        if (files.length === 0) {
          throw new MissingFileError(
            'E_NO_WEIGHTS',
            `no *.safetensors weights in ${dirOrFile}`,
            'edgeq reads safetensors only; convert .bin/.pt checkpoints with transformers save_pretrained(safe_serialization=True)',
          );
        }
      }
    }

    const shards: SafetensorsFile[] = [];
    try {
      for (const f of files) shards.push(await SafetensorsFile.open(f));
      const tensors = mergeShards(shards);
      if (index) checkIndexAgainstShards(index, tensors, dirOrFile);
      const byFile = new Map(shards.map((s) => [s.path, s]));
      return new SafetensorsCheckpoint(dirOrFile, shards, tensors, index, byFile);
    } catch (err) {
      await Promise.all(shards.map((s) => s.close().catch(() => undefined)));
      throw err;
    }
  }

  info(name: string): TensorInfo {
    const t = this.tensors.get(name);
    if (!t) throw new FormatError('E_TENSOR_NOT_FOUND', `no tensor named '${name}'`, this.path);
    return t;
  }

  has(name: string): boolean {
    return this.tensors.has(name);
  }

  async readRaw(name: string): Promise<Uint8Array> {
    return this.shardOf(name).readRaw(name);
  }

  async readF32(name: string, opts?: ReadF32Options): Promise<Float32Array> {
    return this.shardOf(name).readF32(name, opts);
  }

  async readF32Range(name: string, start: number, count: number, opts?: ReadF32Options): Promise<Float32Array> {
    return this.shardOf(name).readF32Range(name, start, count, opts);
  }

  async close(): Promise<void> {
    await Promise.all(this.shards.map((s) => s.close()));
  }

  private shardOf(name: string): SafetensorsFile {
    return this.byFile.get(this.info(name).file)!;
  }
}

/** Read and validate `model.safetensors.index.json` (size-capped, shard names must be plain files). */
export async function readSafetensorsIndex(indexPath: string): Promise<SafetensorsIndex> {
  const src = await FileByteSource.open(indexPath);
  let bytes: Uint8Array;
  try {
    if (src.size > SAFETENSORS_LIMITS.maxHeaderBytes) {
      throw new FormatError('E_INDEX', `index is ${src.size} bytes, over the ${SAFETENSORS_LIMITS.maxHeaderBytes}-byte limit`, indexPath);
    }
    bytes = await src.read(0, src.size);
  } finally {
    await src.close();
  }
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch {
    throw new FormatError('E_INDEX', 'not valid UTF-8 JSON', indexPath);
  }
  const root = isObject(json) ? json : undefined;
  const wm = root?.['weight_map'];
  if (!isObject(wm)) throw new FormatError('E_INDEX', 'has no "weight_map" object', indexPath);
  const weightMap = new Map<string, string>();
  for (const name of Object.keys(wm)) {
    const shard = wm[name];
    if (typeof shard !== 'string' || !isPlainShardName(shard)) {
      throw new FormatError(
        'E_INDEX',
        `weight_map maps tensor '${name}' to ${JSON.stringify(shard)}, not a *.safetensors file in this folder`,
        indexPath,
      );
    }
    weightMap.set(name, shard);
  }
  if (weightMap.size === 0) throw new FormatError('E_INDEX', 'weight_map is empty', indexPath);
  const md = root?.['metadata'];
  return { weightMap, metadata: isObject(md) ? md : {} };
}

/** All shards' tensors in one map; a name in two shards is an error. */
function mergeShards(shards: readonly SafetensorsFile[]): Map<string, TensorInfo> {
  const tensors = new Map<string, TensorInfo>();
  for (const s of shards) {
    for (const [name, info] of s.tensors) {
      const prev = tensors.get(name);
      if (prev) {
        throw new FormatError(
          'E_DUPLICATE_TENSOR',
          `tensor '${name}' appears in both ${path.basename(prev.file)} and ${path.basename(info.file)}`,
          undefined,
          'remove the stray shard (e.g. a leftover from an older download)',
        );
      }
      tensors.set(name, info);
    }
  }
  return tensors;
}

function checkIndexAgainstShards(index: SafetensorsIndex, tensors: ReadonlyMap<string, TensorInfo>, dir: string): void {
  for (const [name, shard] of index.weightMap) {
    const t = tensors.get(name);
    if (!t || path.basename(t.file) !== path.basename(shard)) {
      throw new FormatError(
        'E_INDEX_MISMATCH',
        `${SAFETENSORS_INDEX_FILE} says tensor '${name}' is in ${shard}, but ` +
          (t ? `it is in ${path.basename(t.file)}` : 'no shard contains it'),
        dir,
      );
    }
  }
}

function isPlainShardName(s: string): boolean {
  return s.endsWith('.safetensors') && !s.includes('/') && !s.includes('\\') && !s.startsWith('.') && !s.includes('\0');
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

async function isFile(p: string): Promise<boolean> {
  try {
    return (await fsp.stat(p)).isFile();
  } catch {
    return false;
  }
}
