/**
 * Load a Hugging Face or edgeq Llama-family checkpoint folder into a runnable LlamaModel: config.json
 * validated, weights opened tensor by tensor and handed to build-model.ts (which says how quantized
 * linears run and what `LoadOptions` mean).
 */
import type { MatmulBackend } from '../kernels/backend.js';
import type { LlamaModel } from '../infer/llama-model.js';
import { buildModel, type LoadOptions } from './build-model.js';
import { readModelConfig } from './model-dir.js';
import { openWeightSource } from './weight-source.js';

export { buildModel, HEAD_INT8_GRID, validateCheckpointTensors, type LoadOptions, type LoadProgress } from './build-model.js';

export async function loadModel(dir: string, backend: MatmulBackend, opts: LoadOptions = {}): Promise<LlamaModel> {
  const { config } = readModelConfig(dir);
  const ckpt = await openWeightSource(dir, { checkFinite: opts.checkFinite ?? true });
  try {
    return await buildModel(config, ckpt, backend, opts, dir);
  } finally {
    await ckpt.close();
  }
}
