/**
 * edgeq's inference core for a web page: the same WebAssembly kernels, model code and edgeq checkpoint
 * reader as in Node, with no Node.js imports. The page supplies the bytes (fetch, file input, …):
 *
 *   import { createCore } from './dist/browser/core.js';
 *   const core = await createCore(await (await fetch('kernels.wasm')).arrayBuffer());
 *   const model = await core.loadModel(configJson, new Uint8Array(await (await fetch('model.safetensors')).arrayBuffer()));
 *   const ids = core.generate(model, promptIds, { maxNewTokens: 32 });
 *
 * Shared WebAssembly memory needs a cross-origin-isolated page (COOP: same-origin, COEP: require-corp).
 * Tokenization stays outside (the page passes token ids). Single-threaded in the browser.
 */
import { parseModelConfig } from '../arch/registry.js';
import { EdgeqCheckpoint } from '../formats/edgeq/reader.js';
import { SafetensorsFile } from '../formats/safetensors/reader.js';
import { generate, type GenerateOptions } from '../infer/generate.js';
import type { LlamaModel } from '../infer/llama-model.js';
import { createWasmBackendFromModule } from '../kernels/wasm-backend-core.js';
import { wasm, type WasmModule } from '../kernels/wasm-api.js';
import type { MatmulBackend } from '../kernels/backend.js';
import { buildModel, type LoadOptions } from '../model/build-model.js';
import { EdgeqSource } from '../model/weight-source.js';
import { MemoryByteSource } from '../store/byte-source.js';

export interface BrowserCore {
  readonly backend: MatmulBackend;
  /** An edgeq checkpoint (config.json object + model.safetensors bytes); quantized linears run packed. */
  loadModel(config: Record<string, unknown>, safetensors: Uint8Array, opts?: LoadOptions): Promise<LlamaModel>;
  generate(model: LlamaModel, promptIds: readonly number[], opts: GenerateOptions): number[];
  dispose(): Promise<void>;
}

export async function createCore(wasmBytes: ArrayBuffer | Uint8Array): Promise<BrowserCore> {
  const module: WasmModule = await wasm.compile(wasmBytes instanceof Uint8Array ? wasmBytes : new Uint8Array(wasmBytes));
  const backend = await createWasmBackendFromModule(module, 1);
  return {
    backend,
    async loadModel(config, safetensors, opts = {}) {
      const llama = parseModelConfig(config, 'config.json');
      const file = await SafetensorsFile.fromSource(new MemoryByteSource(safetensors, 'model.safetensors'));
      const ckpt = await EdgeqCheckpoint.fromFile(file, config, '<browser>');
      const source = new EdgeqSource(ckpt);
      try {
        return await buildModel(llama, source, backend, opts, '<browser>');
      } finally {
        await source.close();
      }
    },
    generate(model, promptIds, opts) {
      return generate(model, promptIds, opts);
    },
    async dispose() {
      await backend.dispose();
    },
  };
}
