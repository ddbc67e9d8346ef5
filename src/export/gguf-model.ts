/**
 * edgeq's own forward pass on the weights of a GGUF file: every tensor decoded with the reference codecs,
 * q/k rows permuted back to the HF rotary layout, run on the fp32 core. This is "edgeq's core on the same
 * weights" that llama.cpp's numbers on the GGUF are compared with (`edgeq export --verify`, e2e tests).
 */
import type { LlamaConfig } from '../arch/llama-config.js';
import { LLAMA_LINEARS, type LinearRole } from '../arch/llama-tensors.js';
import { FormatError } from '../core/errors.js';
import { llamaTensorMappings, qkRowPermutation } from '../formats/gguf/llama-layout.js';
import { GgufFile } from '../formats/gguf/reader.js';
import type { BlockWeights } from '../infer/llama-block.js';
import { DenseLinear, type Linear } from '../infer/linear.js';
import { LlamaModel } from '../infer/llama-model.js';
import type { MatmulBackend } from '../kernels/backend.js';

/** Inverse of the export's row permutation: HF row src[r] ← GGUF row r. */
function unpermuteRows(x: Float32Array, rows: number, heads: number): Float32Array {
  const src = qkRowPermutation(rows, heads);
  const cols = x.length / rows;
  const out = new Float32Array(x.length);
  for (let r = 0; r < rows; r++) out.set(x.subarray(r * cols, (r + 1) * cols), src[r]! * cols);
  return out;
}

/** Loads `file` (written for `config`, the model it was exported from) into a runnable LlamaModel. */
export async function loadGgufAsModel(file: string, config: LlamaConfig, backend: MatmulBackend): Promise<LlamaModel> {
  const g = await GgufFile.open(file);
  try {
    const read = async (hf: string): Promise<Float32Array> => {
      const m = llamaTensorMappings(config).find((x) => x.hf === hf);
      if (!m || !g.has(m.gguf)) throw new FormatError('E_GGUF_MISSING_TENSOR', `GGUF has no '${m?.gguf ?? hf}'`, file);
      const t = g.tensor(m.gguf);
      const want = [...m.shape].reverse();
      if (t.dims.join() !== want.join()) throw new FormatError('E_GGUF_SHAPE', `'${m.gguf}' is [${t.dims}], expected [${want}]`, file);
      const x = await g.readF32(m.gguf);
      return m.permuteHeads ? unpermuteRows(x, m.shape[0]!, m.permuteHeads) : x;
    };
    const mappings = llamaTensorMappings(config);
    const hfOf = (gguf: string): string => mappings.find((m) => m.gguf === gguf)!.hf!;
    const embed = await read(hfOf('token_embd.weight'));
    const blocks: BlockWeights[] = [];
    for (let l = 0; l < config.numLayers; l++) {
      const linears = {} as Record<LinearRole, Linear>;
      for (const spec of LLAMA_LINEARS) {
        const [n, k] = spec.shape(config);
        const w = await read(`model.layers.${l}.${spec.hf}.weight`);
        const bias = spec.hasBias(config) ? await read(`model.layers.${l}.${spec.hf}.bias`) : null;
        linears[spec.role] = new DenseLinear(backend, w, n, k, bias);
      }
      blocks.push({
        inputNorm: await read(`model.layers.${l}.input_layernorm.weight`),
        postNorm: await read(`model.layers.${l}.post_attention_layernorm.weight`),
        linears,
      });
    }
    const finalNorm = await read('model.norm.weight');
    const lmW = config.tieWordEmbeddings ? embed : await read('lm_head.weight');
    const lmHead = new DenseLinear(backend, lmW, config.vocabSize, config.hiddenSize, null);
    return new LlamaModel(config, { embed, blocks, finalNorm, lmHead }, backend);
  } finally {
    await g.close();
  }
}
