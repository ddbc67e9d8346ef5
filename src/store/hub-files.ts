/**
 * Which files of a hub repository edgeq needs. Only top-level files are considered: a model's
 * config, tokenizer and safetensors weights live at the repo root; sub-folders (onnx/, original/,
 * gguf/ …) hold other formats we never read.
 */
import { HubError } from '../core/errors.js';

/** Small JSON files downloaded when the repo has them. `config.json` is required. */
export const MODEL_METADATA_FILES: readonly string[] = [
  'config.json',
  'generation_config.json',
  'tokenizer.json',
  'tokenizer_config.json',
  'special_tokens_map.json',
];

export const CONFIG_FILE = 'config.json';
export const SAFETENSORS_INDEX = 'model.safetensors.index.json';
export const SINGLE_SAFETENSORS = 'model.safetensors';

export function isSafetensors(name: string): boolean {
  return name.endsWith('.safetensors') && !name.includes('/');
}

/**
 * The shard file names a `model.safetensors.index.json` refers to (deduplicated, in first-seen
 * order). Shards must be plain top-level `*.safetensors` names: anything else is refused rather than
 * joined onto a cache path.
 */
export function shardsFromIndex(json: unknown, file: string): string[] {
  const weightMap =
    json !== null && typeof json === 'object' ? (json as { weight_map?: unknown }).weight_map : undefined;
  if (weightMap === null || typeof weightMap !== 'object' || Array.isArray(weightMap)) {
    throw new HubError('E_HUB_BAD_INDEX', `${file}: has no "weight_map" object`, 'the repository\'s safetensors index is malformed');
  }
  const shards: string[] = [];
  for (const value of Object.values(weightMap as Record<string, unknown>)) {
    if (typeof value !== 'string' || !isSafetensors(value) || value.includes('\\') || value.startsWith('.')) {
      throw new HubError(
        'E_HUB_BAD_INDEX',
        `${file}: weight_map names an unexpected shard ${JSON.stringify(value)}`,
        'shards must be top-level *.safetensors files',
      );
    }
    if (!shards.includes(value)) shards.push(value);
  }
  if (shards.length === 0) {
    throw new HubError('E_HUB_BAD_INDEX', `${file}: weight_map is empty`, 'the repository\'s safetensors index is malformed');
  }
  return shards;
}

/**
 * The weight files to fetch given the top-level file names and, when the repo is sharded, the
 * shards its index lists. With an index only its shards are used; otherwise `model.safetensors` if
 * present (skipping duplicates such as Mistral's `consolidated.safetensors`); otherwise every
 * top-level `*.safetensors`.
 */
export function selectWeightFiles(names: readonly string[], indexShards?: readonly string[]): string[] {
  if (indexShards) return [...indexShards];
  if (names.includes(SINGLE_SAFETENSORS)) return [SINGLE_SAFETENSORS];
  return names.filter(isSafetensors).sort();
}

/** A short description of the weight formats present, for "no safetensors" errors. */
export function describeOtherWeights(names: readonly string[]): string {
  const found = names.filter((n) => /\.(bin|pt|pth|ckpt|gguf|onnx|h5|msgpack)$/.test(n));
  return found.length > 0 ? ` (it has ${found.slice(0, 4).join(', ')}${found.length > 4 ? ', …' : ''})` : '';
}
