/**
 * A runnable Llama-family model: embeddings → decoder blocks → final RMSNorm → LM head, with a KV cache
 * for prefill + decode. Weights are whatever `Linear`s the loader built (dense fp32 today).
 */
import type { LlamaConfig } from '../arch/llama-config.js';
import { UsageError } from '../core/errors.js';
import type { KvStorage, MatmulBackend } from '../kernels/backend.js';
import { KvCache, type KvLease } from './kv-cache.js';
import { llamaBlockForward, type BlockWeights } from './llama-block.js';
import type { Linear } from './linear.js';
import { rmsNorm } from './ops.js';
import { RopeTable } from './rope.js';

export interface LlamaWeights {
  embed: Float32Array; // (vocab, d)
  blocks: BlockWeights[];
  finalNorm: Float32Array; // (d,)
  lmHead: Linear; // (vocab, d); the embedding matrix when tied
}

export type LogitsMode = 'all' | 'last' | 'none';

export class LlamaModel {
  private rope: RopeTable;
  /** KV storage in the backend's memory (when it has one), reused by each new cache. */
  private kv: { storage: KvStorage; capacity: number; lease: KvLease } | undefined;

  constructor(
    readonly config: LlamaConfig,
    readonly weights: LlamaWeights,
    readonly backend: MatmulBackend,
  ) {
    this.rope = RopeTable.forConfig(config, 0);
  }

  /**
   * A KV cache for up to `capacity` positions. On a backend with its own attention kernel the cache lives in
   * the backend's memory, allocated once per model and reused: a new cache replaces the previous one (which
   * then refuses to run), so a model serves one sequence at a time — create one model per concurrent sequence.
   */
  createCache(capacity: number): KvCache {
    const c = this.config;
    if (!this.backend.allocKv || !this.backend.attention) return new KvCache(c.numLayers, c.numKvHeads, c.headDim, capacity);
    if (!this.kv || this.kv.capacity < capacity) {
      this.kv?.storage.free();
      const cap = Math.max(capacity, 1);
      this.kv = { storage: this.backend.allocKv(c.numLayers, c.numKvHeads, cap, c.headDim), capacity: cap, lease: { current: undefined } };
    }
    const cache = new KvCache(c.numLayers, c.numKvHeads, c.headDim, this.kv.capacity, this.kv.storage, this.kv.lease);
    cache.maxLength = capacity;
    this.kv.lease.current = cache;
    return cache;
  }

  private ropeFor(positions: number): RopeTable {
    if (this.rope.maxPos < positions) this.rope = RopeTable.forConfig(this.config, Math.max(positions, 2 * this.rope.maxPos));
    return this.rope;
  }

  /** Token embeddings: (T, d). */
  embed(ids: ArrayLike<number>): Float32Array {
    const { hiddenSize: d, vocabSize } = this.config;
    const x = new Float32Array(ids.length * d);
    for (let t = 0; t < ids.length; t++) {
      const id = ids[t];
      if (!Number.isInteger(id) || id < 0 || id >= vocabSize)
        throw new UsageError('E_TOKEN_ID', `token id ${id} is outside the vocabulary [0, ${vocabSize})`, 'the tokenizer does not match this model');
      x.set(this.weights.embed.subarray(id * d, (id + 1) * d), t * d);
    }
    return x;
  }

  /**
   * Runs ids at positions [cache.length, cache.length + T), appends them to the cache and returns
   * logits: (T, vocab) for 'all', (1, vocab) for 'last', null for 'none'.
   */
  forward(ids: ArrayLike<number>, cache: KvCache, mode: LogitsMode = 'all'): Float32Array | null {
    const c = this.config;
    const T = ids.length;
    if (T === 0) throw new UsageError('E_EMPTY', 'forward() needs at least one token');
    cache.ensureRoom(T);
    const rope = this.ropeFor(cache.length + T);
    const x = this.embed(ids);
    for (let l = 0; l < c.numLayers; l++) llamaBlockForward(c, this.weights.blocks[l], this.backend, rope, cache, l, x, T);
    cache.length += T;
    if (mode === 'none') return null;
    const d = c.hiddenSize;
    const rows = mode === 'all' ? T : 1;
    const last = mode === 'all' ? x : x.subarray((T - 1) * d, T * d);
    const h = rmsNorm(last, this.weights.finalNorm, rows, d, c.rmsNormEps, new Float32Array(rows * d));
    return this.weights.lmHead.forward(h, rows);
  }

  /** Weight bytes one decode step reads: every block linear and the LM head as executed, plus one embedding row (fp32). */
  weightBytesPerToken(): number {
    let bytes = this.weights.lmHead.weightBytes + this.config.hiddenSize * 4;
    for (const b of this.weights.blocks) for (const lin of Object.values(b.linears)) bytes += lin.weightBytes;
    return bytes;
  }

  dispose(): void {
    for (const b of this.weights.blocks) for (const lin of Object.values(b.linears)) lin.free();
    this.weights.lmHead.free();
    this.kv?.storage.free();
    this.kv = undefined;
  }
}
