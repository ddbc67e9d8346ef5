/**
 * Calibration activations flowing through the pipeline: N sequences of T tokens, (N, T, d) fp32. Each
 * sequence runs as its own causal sequence (fresh one-layer KV cache), as in the GPTQ/AWQ references.
 */
import type { LlamaConfig } from '../arch/llama-config.js';
import { KvCache } from '../infer/kv-cache.js';
import { llamaBlockForward, type BlockTap, type BlockWeights, type TapPoint } from '../infer/llama-block.js';
import { RopeTable } from '../infer/rope.js';
import type { MatmulBackend } from '../kernels/backend.js';
import { FormatError } from '../core/errors.js';
import type { ReadF32Options, TensorReader } from '../formats/safetensors/types.js';

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

/** Embedding lookup of calibration ids (n, T) → activations (the whole table in memory: the reference). */
export function embedCalibration(embed: Float32Array, ids: Int32Array | Uint32Array, n: number, T: number, d: number): CalibActivations {
  const a = new CalibActivations(n, T, d);
  for (let i = 0; i < n * T; i++) a.data.set(embed.subarray(ids[i] * d, (ids[i] + 1) * d), i * d);
  return a;
}

/**
 * The embedding table read a band of rows at a time (never whole: 1 GB in fp32 at Llama-3 widths): each band
 * goes to `onBand` (e.g. the checkpoint writer, in element order) and, when `calib` is given, the rows of
 * the calibration ids are gathered into the activations — the same values as embedCalibration (ids past the
 * table, as there, leave zero rows).
 */
export async function streamEmbedding(
  reader: Pick<TensorReader, 'tensors'> & { readF32Range(name: string, start: number, count: number, opts?: ReadF32Options): Promise<Float32Array> },
  name: string,
  d: number,
  calib: { ids: Int32Array | Uint32Array; n: number; T: number } | null,
  onBand: (band: Float32Array) => Promise<void>,
  bandBytes = 16 << 20,
): Promise<CalibActivations | null> {
  const info = reader.tensors.get(name);
  if (!info) throw new FormatError('E_TENSOR_NOT_FOUND', `no tensor named '${name}'`);
  const vocab = Math.floor(info.numel / d);
  if (vocab * d !== info.numel) throw new FormatError('E_TENSOR_SHAPE', `'${name}' has ${info.numel} values, not a multiple of hidden size ${d}`);
  const acts = calib ? new CalibActivations(calib.n, calib.T, d) : null;
  const tokens = calib ? calib.n * calib.T : 0;
  const rowsPerBand = Math.max(1, Math.floor(bandBytes / 4 / d));
  for (let r0 = 0; r0 < vocab; r0 += rowsPerBand) {
    const r1 = Math.min(vocab, r0 + rowsPerBand);
    const band = await reader.readF32Range(name, r0 * d, (r1 - r0) * d, { checkFinite: true });
    if (acts && calib) {
      for (let i = 0; i < tokens; i++) {
        const id = calib.ids[i]!;
        if (id >= r0 && id < r1) acts.data.set(band.subarray((id - r0) * d, (id - r0 + 1) * d), i * d);
      }
    }
    await onBand(band);
  }
  return acts;
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
