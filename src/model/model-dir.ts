/**
 * The files of a Hugging Face model folder: config.json (required), generation_config.json and
 * tokenizer_config.json (optional). Errors name the missing file and what to do.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { LlamaConfig } from '../arch/llama-config.js';
import { parseModelConfig } from '../arch/registry.js';
import { FormatError, MissingFileError } from '../core/errors.js';

export function readJsonFile(file: string): unknown {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new MissingFileError('E_MISSING_FILE', `cannot read ${file}: ${(e as Error).message}`);
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new FormatError('E_JSON', `not valid JSON (${(e as Error).message})`, file, 'the file is corrupt or truncated; download it again');
  }
}

export function readOptionalJson(file: string): Record<string, unknown> | null {
  if (!fs.existsSync(file)) return null;
  const j = readJsonFile(file);
  return typeof j === 'object' && j !== null && !Array.isArray(j) ? (j as Record<string, unknown>) : null;
}

export function assertModelDir(dir: string): void {
  let st: fs.Stats;
  try {
    st = fs.statSync(dir);
  } catch {
    throw new MissingFileError('E_NO_MODEL', `model folder ${dir} does not exist`, 'pass --model a local Hugging Face model folder or a hub id like org/name');
  }
  if (!st.isDirectory())
    throw new MissingFileError('E_NO_MODEL', `${dir} is a file, not a model folder`, 'pass the folder that holds config.json and the *.safetensors files');
}

export function readModelConfig(dir: string): { config: LlamaConfig; raw: Record<string, unknown> } {
  assertModelDir(dir);
  const file = path.join(dir, 'config.json');
  if (!fs.existsSync(file))
    throw new MissingFileError(
      'E_NO_CONFIG',
      `${dir} has no config.json`,
      'a Hugging Face model folder needs config.json next to its *.safetensors files; copy it from the original model repo',
    );
  const raw = readJsonFile(file);
  return { config: parseModelConfig(raw, file), raw: raw as Record<string, unknown> };
}
