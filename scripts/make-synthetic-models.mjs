#!/usr/bin/env node
// Seeded random-weight fp16 checkpoints at real shapes, for benchmarks.
//   npm run make:synthetic                       -> all presets into .cache/synthetic/<preset>
//   npm run make:synthetic -- smollm2-135m --layers 2 --out /tmp/x --seed 7
import path from 'node:path';
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const { writeSyntheticModel, syntheticPresets } = await import(path.join(root, 'dist/model/synthetic.js'));

const args = process.argv.slice(2);
const opt = (name) => {
  const i = args.indexOf(`--${name}`);
  if (i < 0) return undefined;
  const v = args[i + 1];
  args.splice(i, 2);
  return v;
};
const layers = opt('layers');
const seed = opt('seed');
const out = opt('out');
const names = args.length ? args : Object.keys(syntheticPresets());
for (const name of names) {
  const dir = out ?? path.join(root, '.cache/synthetic', layers ? `${name}-${layers}l` : name);
  if (fs.existsSync(path.join(dir, 'model.safetensors')) && !out) {
    console.log(`${name}: exists at ${dir}`);
    continue;
  }
  const t0 = Date.now();
  await writeSyntheticModel(name, dir, { layers: layers ? Number(layers) : undefined, seed: seed ? Number(seed) : undefined });
  console.log(`${name}: wrote ${dir} in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
}
