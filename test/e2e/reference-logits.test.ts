/**
 * The forward pass against the independent float64 PyTorch reference: prompt logits within 1e-3 absolute,
 * per-position argmax, and 24 greedy tokens, for both real fixture models on the WASM backend (1 and 2
 * threads) and, for stories260K, on the scalar oracle backend too.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { generateGreedy } from '../../src/infer/generate.js';
import { argmax } from '../../src/infer/ops.js';
import type { MatmulBackend } from '../../src/kernels/backend.js';
import { createScalarBackend } from '../../src/kernels/scalar-backend.js';
import { createWasmBackend } from '../../src/kernels/wasm-backend.js';
import { loadModel } from '../../src/model/load-model.js';
import { FIXTURE_MODELS, FIXTURE_REFERENCE } from '../helpers/fixtures.js';
import { loadReference, maxAbsDiff } from '../helpers/reference.js';

const backends: MatmulBackend[] = [];
afterAll(async () => {
  for (const b of backends) await b.dispose();
});

const cases = [
  { name: 'stories260K', dir: FIXTURE_MODELS.stories260K, ref: FIXTURE_REFERENCE.stories260K, backends: ['scalar', 'wasm1', 'wasm2'] },
  { name: 'brown-llama-7m', dir: FIXTURE_MODELS.brownLlama7m, ref: FIXTURE_REFERENCE.brownLlama7m, backends: ['wasm1', 'wasm2'] },
] as const;

async function makeBackend(kind: string): Promise<MatmulBackend> {
  const b = kind === 'scalar' ? createScalarBackend() : await createWasmBackend({ threads: kind === 'wasm1' ? 1 : 2 });
  backends.push(b);
  return b;
}

describe.each(cases)('$name vs float64 PyTorch reference', (c) => {
  const { ref, logits: refLogits } = loadReference(c.ref);
  it.each(c.backends)('prompt logits, argmax and greedy_24 on %s', async (kind) => {
    const model = await loadModel(c.dir, await makeBackend(kind));
    const vocab = model.config.vocabSize;
    for (const p of ref.prompts) {
      const [T, V] = p.logits_shape;
      expect(V).toBe(vocab);
      expect(p.ids_with_bos.length).toBe(T);
      const cache = model.createCache(T);
      const logits = model.forward(p.ids_with_bos, cache, 'all')!;
      const expected = refLogits.subarray(p.logits_offset_floats, p.logits_offset_floats + T * V);
      expect(maxAbsDiff(logits, expected)).toBeLessThan(1e-3);
      const am = Array.from({ length: T }, (_, t) => argmax(logits, t * V, V));
      expect(am).toEqual(p.argmax_per_position);
      expect(generateGreedy(model, p.ids_with_bos, { maxNewTokens: 24 })).toEqual(p.greedy_24);
    }
    model.dispose();
  });
});
