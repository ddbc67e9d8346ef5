/** Locations inside the installed edgeq package (works from src/ under vitest and from dist/). */
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The package root: src/core/../.. or dist/core/../.. */
export const PACKAGE_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** Bundled data: the default model and evaluation text. */
export const BUNDLED = {
  defaultModel: path.join(PACKAGE_ROOT, 'fixtures/models/brown-llama-7m'),
  models: {
    'brown-llama-7m': path.join(PACKAGE_ROOT, 'fixtures/models/brown-llama-7m'),
    stories260K: path.join(PACKAGE_ROOT, 'fixtures/models/stories260K'),
  } as Record<string, string>,
  datasets: {
    wikitext2: path.join(PACKAGE_ROOT, 'fixtures/text/wiki.test.raw'),
  } as Record<string, string>,
};

/** edgeq's own cache (tokenized datasets, calibration samples): $EDGEQ_CACHE or ~/.cache/edgeq. */
export function edgeqCacheDir(): string {
  return process.env.EDGEQ_CACHE ?? path.join(os.homedir(), '.cache', 'edgeq');
}
