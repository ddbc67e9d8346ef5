/**
 * Files a quantized checkpoint carries over from its source model: the tokenizer, generation defaults,
 * and the source config.json (read here so writers can extend it).
 */
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { FormatError, MissingFileError } from '../../core/errors.js';

/** Copied verbatim when present in the source folder. */
export const MODEL_SIDE_FILES = [
  'tokenizer.json',
  'tokenizer_config.json',
  'generation_config.json',
  'special_tokens_map.json',
  'tokenizer.model',
] as const;

/**
 * Copy the side files present in `srcDir` into `outDir` (an existing folder, e.g. a writer's tempPath).
 * Returns the names copied. Missing files are skipped; an existing file in outDir is an error.
 */
export async function copyModelSideFiles(srcDir: string, outDir: string): Promise<string[]> {
  const copied: string[] = [];
  for (const name of MODEL_SIDE_FILES) {
    const src = path.join(srcDir, name);
    const st = await fsp.stat(src).catch(() => undefined);
    if (!st?.isFile()) continue;
    const dest = path.join(outDir, name);
    await fsp.copyFile(src, dest, fsp.constants.COPYFILE_EXCL);
    const fh = await fsp.open(dest, 'r+');
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
    copied.push(name);
  }
  return copied;
}

/** The source model's config.json as a JSON object. */
export async function readSourceConfig(srcDir: string): Promise<Record<string, unknown>> {
  const file = path.join(srcDir, 'config.json');
  let text: string;
  try {
    text = await fsp.readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new MissingFileError('E_NO_CONFIG', `no config.json in ${srcDir}`, 'a model folder must contain its Hugging Face config.json');
    }
    throw err;
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new FormatError('E_CONFIG_JSON', 'is not valid JSON', file);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new FormatError('E_CONFIG_JSON', 'is not a JSON object', file);
  return json as Record<string, unknown>;
}

/** Where a checkpoint writer takes config.json and side files from. */
export interface ModelSource {
  /** Source model folder: its config.json is the base of the new one; side files are copied from it. */
  sourceDir?: string;
  /** Source config.json object (takes precedence over sourceDir's file). */
  sourceConfig?: Record<string, unknown>;
}

export async function resolveSourceConfig(src: ModelSource): Promise<Record<string, unknown>> {
  if (src.sourceConfig) return structuredClone(src.sourceConfig);
  if (src.sourceDir) return readSourceConfig(src.sourceDir);
  throw new MissingFileError('E_NO_CONFIG', 'a checkpoint writer needs the source config (sourceDir or sourceConfig)');
}
