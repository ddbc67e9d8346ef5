/**
 * Calibration activations flowing through the pipeline: N sequences of T tokens, (N, T, d) fp32. Each
 * sequence runs as its own causal sequence (fresh one-layer KV cache), as in the GPTQ/AWQ references.
 */
import type { LlamaConfig } from '../arch/llama-config.js';
import { KvCache } from '../infer/kv-cache.js';
import { llamaBlockForward, type BlockTap, type BlockWeights, type TapPoint } from '../infer/llama-block.js';
import { RopeTable } from '../infer/rope.js';
import type { MatmulBackend } from '../kernels/backend.js';

export class CalibActivations {
  readonly data: Float32Array; // (n, T, d)
  constructor(
    readonly n: number,
    readonly T: number,
    readonly d: number,
    data?: Float32Array,
  ) {
    this.data = data ?? new Float32Array(n * T * d);
  }

  get bytes(): number {
    return this.data.byteLength;
  }

  /** Sequence i: (T, d) view. */
  seq(i: number): Float32Array {
    const s = this.T * this.d;
    return this.data.subarray(i * s, (i + 1) * s);
  }

  clone(): CalibActivations {
    return new CalibActivations(this.n, this.T, this.d, this.data.slice());
  }
}

/** Embedding lookup of calibration ids (n, T) → activations. */
export function embedCalibration(embed: Float32Array, ids: Int32Array | Uint32Array, n: number, T: number, d: number): CalibActivations {
  const a = new CalibActivations(n, T, d);
  for (let i = 0; i < n * T; i++) a.data.set(embed.subarray(ids[i] * d, (ids[i] + 1) * d), i * d);
  return a;
}

export class BlockRunner {
  private readonly rope: RopeTable;
  private readonly cache: KvCache;
  constructor(
    private readonly c: LlamaConfig,
    private readonly backend: MatmulBackend,
    T: number,
  ) {
    this.rope = RopeTable.forConfig(c, T);
    this.cache = new KvCache(1, c.numKvHeads, c.headDim, T);
  }

  /**
   * Runs every sequence of `acts` through the block; updates acts in place when `propagate`, otherwise
   * works on a scratch copy per sequence (statistics only). `tap` sees each group's input per sequence.
   */
  run(w: BlockWeights, acts: CalibActivations, opts: { propagate: boolean; tap?: BlockTap; stopAfter?: TapPoint }): void {
    if (opts.propagate && opts.stopAfter) throw new Error('a propagating pass must run the whole block');
    for (let i = 0; i < acts.n; i++) {
      const x = opts.propagate ? acts.seq(i) : acts.seq(i).slice();
      this.cache.reset();
      llamaBlockForward(this.c, w, this.backend, this.rope, this.cache, 0, x, acts.T, opts.tap, opts.stopAfter);
    }
  }
}
