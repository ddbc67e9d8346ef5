/**
 * AWQ's view of a block's calibration inputs, gathered in one fp forward over ALL calibration sequences
 * (as AutoAWQ's `_get_input_feat`, which hooks every linear on the whole calibration set):
 *   - `stats[p]`: per-input-channel mean |x| of every tap point over all tokens (AutoAWQ's x_mean);
 *   - `sample[p]`: every `stride`-th token row over all tokens (AutoAWQ's clip search subsamples
 *     `input_feat[:, ::max(1, n_tokens // n_sample_token)]` of the whole set, not of a prefix);
 *   - `search[p]`: the full inputs of the first `searchSeqs` sequences, on which the scale search scores
 *     candidate module outputs (a CPU budget: AutoAWQ scores on every token).
 * Memory: the search prefix plus ≈ n_sample_token rows, never the whole set.
 */
import type { LlamaConfig } from '../arch/llama-config.js';
import type { TapPoint } from '../infer/llama-block.js';
import type { MatmulBackend } from '../kernels/backend.js';
import { BlockRunner, type CalibActivations } from '../pipeline/activations.js';
import { freeBlockWeights, toBlockWeights, type BlockF32 } from '../pipeline/block-weights.js';

export const TAP_POINTS: TapPoint[] = ['qkv', 'o', 'gate_up', 'down'];

export interface AwqCapture {
  width: Record<TapPoint, number>;
  /** mean |x| per channel over all calibration tokens. */
  stats: Record<TapPoint, Float64Array>;
  /** (sampleRows, width) strided token rows over all calibration tokens. */
  sample: Record<TapPoint, Float32Array>;
  sampleRows: number;
  /** (searchSeqs·T, width) inputs of the first searchSeqs sequences. */
  search: Record<TapPoint, Float32Array>;
  searchSeqs: number;
}

export function tapWidths(c: LlamaConfig): Record<TapPoint, number> {
  return { qkv: c.hiddenSize, o: c.numHeads * c.headDim, gate_up: c.hiddenSize, down: c.intermediateSize };
}

/** Row indices AutoAWQ's clip search keeps of `rows` tokens: 0, step, 2·step, … with step = max(1, ⌊rows / want⌋). */
export function clipSampleStride(rows: number, want: number): { stride: number; count: number } {
  const stride = Math.max(1, Math.floor(rows / Math.max(1, want)));
  return { stride, count: Math.ceil(rows / stride) };
}

export function captureAwqInputs(c: LlamaConfig, block: BlockF32, acts: CalibActivations, backend: MatmulBackend, opts: { searchSeqs: number; clipTokens: number }): AwqCapture {
  const { n, T } = acts;
  const rows = n * T;
  const width = tapWidths(c);
  const searchSeqs = Math.min(n, Math.max(1, opts.searchSeqs));
  const { stride, count } = clipSampleStride(rows, opts.clipTokens);
  const per = <A>(make: (p: TapPoint) => A) => Object.fromEntries(TAP_POINTS.map((p) => [p, make(p)])) as Record<TapPoint, A>;
  const sums = per((p) => new Float64Array(width[p]));
  const sample = per((p) => new Float32Array(count * width[p]));
  const search = per((p) => new Float32Array(searchSeqs * T * width[p]));
  const seqOf = per(() => 0);
  const w = toBlockWeights(backend, block);
  try {
    new BlockRunner(c, backend, T).run(w, acts, {
      propagate: false,
      tap: (p, x, t) => {
        const k = width[p];
        const seq = seqOf[p]++;
        const s = sums[p];
        for (let r = 0; r < t; r++) {
          const o = r * k;
          for (let ch = 0; ch < k; ch++) s[ch] += Math.abs(x[o + ch]);
          const g = seq * T + r;
          if (g % stride === 0) sample[p].set(x.subarray(o, o + k), (g / stride) * k);
        }
        if (seq < searchSeqs) search[p].set(x.subarray(0, t * k), seq * T * k);
      },
    });
  } finally {
    freeBlockWeights(w);
  }
  const stats = per((p) => sums[p].map((v) => v / rows));
  return { width, stats, sample, sampleRows: count, search, searchSeqs };
}
