/**
 * Calibration statistics for activation encodings: min/max of the activations at the points of edgeq's own
 * forward that the ONNX graph names (llama-graph.ts `taps`): the embedding output, each block's linear
 * group inputs (qkv = input_layernorm output, o = merged attention heads, gate_up = post_attention_layernorm
 * output, down = silu(gate)·up), each block's output (residual stream), the final norm and the logits.
 * Each calibration sequence runs from position 0 with a fresh KV cache.
 */
import type { LlamaModel } from '../../infer/llama-model.js';
import { llamaBlockForward, type TapPoint } from '../../infer/llama-block.js';
import { rmsNorm } from '../../infer/ops.js';
import { RopeTable } from '../../infer/rope.js';

export interface Range {
  min: number;
  max: number;
}

/** Tap key (as LlamaGraphInfo.taps) → observed range. */
export type ActivationRanges = Map<string, Range>;

function observe(ranges: ActivationRanges, key: string, x: Float32Array, len = x.length): void {
  let r = ranges.get(key);
  if (!r) ranges.set(key, (r = { min: Infinity, max: -Infinity }));
  for (let i = 0; i < len; i++) {
    const v = x[i];
    if (v < r.min) r.min = v;
    if (v > r.max) r.max = v;
  }
}

/** Runs every sequence through `model` and records the range at each tap. */
export function collectActivationRanges(model: LlamaModel, sequences: readonly (readonly number[])[]): ActivationRanges {
  const c = model.config;
  const ranges: ActivationRanges = new Map();
  for (const ids of sequences) {
    const T = ids.length;
    if (T === 0) continue;
    const cache = model.createCache(T);
    const rope = RopeTable.forConfig(c, T);
    const x = model.embed(ids);
    observe(ranges, 'embed', x);
    for (let l = 0; l < c.numLayers; l++) {
      const tap = (point: TapPoint, a: Float32Array) => observe(ranges, `layers.${l}.${point}`, a);
      llamaBlockForward(c, model.weights.blocks[l], model.backend, rope, cache, l, x, T, tap);
      observe(ranges, `layers.${l}.residual`, x);
    }
    cache.length += T;
    const h = rmsNorm(x, model.weights.finalNorm, T, c.hiddenSize, c.rmsNormEps, new Float32Array(x.length));
    observe(ranges, 'final_norm', h);
    observe(ranges, 'logits', model.weights.lmHead.forward(h, T));
  }
  return ranges;
}
