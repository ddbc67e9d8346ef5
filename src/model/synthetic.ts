/**
 * Seeded random-weight checkpoints at real model shapes (presets/synthetic-models.json), for speed and
 * memory work only: the weights are noise. Written tensor by tensor in fp16 (bounded memory at any size),
 * with the bundled brown-llama-7m tokenizer (ids < 4096 are valid for every preset's vocabulary).
 */
import fs from 'node:fs';
import path from 'node:path';
import { expectedTensors } from '../arch/llama-tensors.js';
import { parseModelConfig } from '../arch/registry.js';
import { writeFileAtomic } from '../core/atomic-write.js';
import { encodeF16 } from '../core/dtype.js';
import { UsageError } from '../core/errors.js';
import { BUNDLED, PACKAGE_ROOT } from '../core/paths.js';
import { SafetensorsWriter } from '../formats/safetensors/writer.js';

interface Preset {
  source: string;
  config: Record<string, unknown>;
}

export function syntheticPresets(): Record<string, Preset> {
  const all = JSON.parse(fs.readFileSync(path.join(PACKAGE_ROOT, 'presets/synthetic-models.json'), 'utf8')) as Record<string, Preset | string>;
  return Object.fromEntries(Object.entries(all).filter((e): e is [string, Preset] => typeof e[1] === 'object'));
}

/** xorshift128+ style 32-bit generator (deterministic across platforms). */
function makeRng(seed: number): () => number {
  let a = seed >>> 0 || 1;
  let b = 0x9e3779b9;
  let c = 0x243f6a88;
  let d = 0xb7e15162;
  return () => {
    const t = a ^ (a << 11);
    a = b;
    b = c;
    c = d;
    d = (d ^ (d >>> 19) ^ (t ^ (t >>> 8))) >>> 0;
    return d / 4294967296;
  };
}

export interface SyntheticOptions {
  seed?: number;
  /** Override num_hidden_layers (e.g. 2 and 4 layers for memory-scaling runs). */
  layers?: number;
  onTensor?: (name: string, index: number, count: number) => void;
}

/** Writes config.json, model.safetensors (fp16), tokenizer files and a README into outDir. */
export async function writeSyntheticModel(presetName: string, outDir: string, opts: SyntheticOptions = {}): Promise<void> {
  const preset = syntheticPresets()[presetName];
  if (!preset) throw new UsageError('E_PRESET', `unknown synthetic preset '${presetName}'`, `choose one of: ${Object.keys(syntheticPresets()).join(', ')}`);
  const raw = { ...preset.config, torch_dtype: 'float16', ...(opts.layers ? { num_hidden_layers: opts.layers } : {}) };
  const config = parseModelConfig(raw);
  const seed = opts.seed ?? 1234;
  fs.mkdirSync(outDir, { recursive: true });
  const tensors = expectedTensors(config);
  const writer = await SafetensorsWriter.create(
    path.join(outDir, 'model.safetensors'),
    tensors.map((t) => ({ name: t.name, dtype: 'F16' as const, shape: t.shape })),
    { metadata: { format: 'pt', 'edgeq.synthetic': presetName, 'edgeq.seed': String(seed) } },
  );
  const rng = makeRng(seed);
  const CHUNK = 1 << 20;
  const buf = new Float32Array(CHUNK);
  for (let i = 0; i < tensors.length; i++) {
    const t = tensors[i];
    opts.onTensor?.(t.name, i, tensors.length);
    const numel = t.shape.reduce((a, b) => a * b, 1);
    const isNorm = t.shape.length === 1 && t.name.endsWith('norm.weight');
    // Uniform noise with std 1/sqrt(fan_in) keeps activations O(1) through the depth; norms near 1.
    const fanIn = t.shape.length === 2 ? t.shape[1] : 1;
    const half = Math.sqrt(3 / fanIn);
    for (let off = 0; off < numel; off += CHUNK) {
      const n = Math.min(CHUNK, numel - off);
      const v = buf.subarray(0, n);
      for (let j = 0; j < n; j++) v[j] = isNorm ? 1 + 0.1 * (rng() - 0.5) : (2 * rng() - 1) * half;
      await writer.writeTensor(t.name, encodeF16(v));
    }
  }
  await writer.finish();
  writeFileAtomic(path.join(outDir, 'config.json'), `${JSON.stringify(raw, null, 2)}\n`);
  for (const f of ['tokenizer.json', 'tokenizer_config.json']) fs.copyFileSync(path.join(BUNDLED.defaultModel, f), path.join(outDir, f));
  writeFileAtomic(
    path.join(outDir, 'README.md'),
    `# Synthetic ${presetName} (random weights)\n\nShape from ${preset.source}; seeded noise (seed ${seed}), fp16. For speed and memory benchmarks only.\n` +
      `Tokenizer: the bundled brown-llama-7m tokenizer (ids < 4096); bos/eos ids 1/2.\n`,
  );
}
