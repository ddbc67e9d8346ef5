/**
 * Key/value cache of one sequence. Per layer, K and V are (kvHeads, capacity, headDim) row-major so that
 * one KV head's keys for positions [0, S) are contiguous — the attention matmul reads them in place.
 */
import { UsageError } from '../core/errors.js';
import type { KvStorage } from '../kernels/backend.js';

/** Storage shared by successive caches of one model: only the newest cache built on it may be used. */
export interface KvLease {
  current: KvCache | undefined;
}

export class KvCache {
  readonly k: Float32Array[];
  readonly v: Float32Array[];
  /** Number of positions already filled. */
  length = 0;
  /** Positions this cache may hold (≤ capacity, the storage's row stride). */
  maxLength: number;

  constructor(
    readonly numLayers: number,
    readonly kvHeads: number,
    readonly headDim: number,
    readonly capacity: number,
    /** K/V inside a backend's memory (see MatmulBackend.allocKv), each (kvHeads, capacity, headDim) per layer. */
    storage?: KvStorage,
    /** Set when `storage` is reused by later caches: this cache is usable while it is lease.current. */
    readonly lease?: KvLease,
  ) {
    this.maxLength = capacity;
    if (storage) {
      const floats = kvHeads * capacity * headDim;
      if (storage.k.length !== numLayers || storage.v.length !== numLayers || storage.k.some((a) => a.length !== floats) || storage.v.some((a) => a.length !== floats))
        throw new UsageError('E_KV_STORAGE', `KV storage does not hold ${numLayers} layers of ${kvHeads}×${capacity}×${headDim} values`);
      this.k = storage.k;
      this.v = storage.v;
      return;
    }
    this.k = [];
    this.v = [];
    for (let l = 0; l < numLayers; l++) {
      this.k.push(new Float32Array(kvHeads * capacity * headDim));
      this.v.push(new Float32Array(kvHeads * capacity * headDim));
    }
  }

  get bytes(): number {
    return 2 * this.numLayers * this.kvHeads * this.capacity * this.headDim * 4;
  }

  reset(): void {
    this.length = 0;
  }

  ensureRoom(T: number): void {
    if (this.lease && this.lease.current !== this)
      throw new UsageError('E_KV_STALE', 'this KV cache was replaced by a newer createCache() of the same model', 'create the cache again, or use one model instance per concurrent sequence');
    if (this.length + T > this.maxLength)
      throw new UsageError(
        'E_CONTEXT_FULL',
        `sequence of ${this.length + T} tokens exceeds the KV cache capacity ${this.maxLength}`,
        'use a shorter prompt, fewer new tokens, or a larger --ctx',
      );
  }

  /** Store k, v (T, kvHeads, headDim) of layer l at positions [pos0, pos0+T). */
  write(l: number, k: Float32Array, v: Float32Array, T: number, pos0: number): void {
    const hd = this.headDim;
    const K = this.k[l];
    const V = this.v[l];
    for (let t = 0; t < T; t++) {
      for (let g = 0; g < this.kvHeads; g++) {
        const src = (t * this.kvHeads + g) * hd;
        const dst = (g * this.capacity + pos0 + t) * hd;
        K.set(k.subarray(src, src + hd), dst);
        V.set(v.subarray(src, src + hd), dst);
      }
    }
  }
}
