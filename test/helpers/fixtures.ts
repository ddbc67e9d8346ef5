import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** Repository root (test/helpers/../..). Tests read fixtures only from the repo, never from ../shared. */
export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

export const FIXTURE_MODELS = {
  stories260K: path.join(REPO_ROOT, 'fixtures/models/stories260K'),
  brownLlama7m: path.join(REPO_ROOT, 'fixtures/models/brown-llama-7m'),
} as const;

export const FIXTURE_REFERENCE = {
  stories260K: path.join(REPO_ROOT, 'fixtures/reference/stories260K.ctx256'),
  brownLlama7m: path.join(REPO_ROOT, 'fixtures/reference/brown-llama-7m.ctx256'),
} as const;

export const WIKITEXT2_TEST = path.join(REPO_ROOT, 'fixtures/text/wiki.test.raw');
