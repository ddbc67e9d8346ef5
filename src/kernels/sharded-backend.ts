/**
 * The `wasm` backend as createWasmBackend returns it: N WasmBackend "shards", each with its own
 * WebAssembly.Memory, kernel instance and worker pool, behind one MatmulBackend.
 *
 * Why shards: a wasm32 memory addresses at most 4 GiB, and a wasm function can only touch the memory it was
 * instantiated over. One memory for every weight of a model caps the model at ~4 GiB packed (an 8B model at
 * 4 bits does not fit: E_WASM_OOM). Weights are therefore mapped per tensor: each weight lives whole in one
 * shard, and each product runs on the shard that holds its weight (activations are copied into that shard's
 * memory and the result copied out — what a single WasmBackend already does on every call, so a product
 * computes bit for bit what it computes on a single-memory backend with the same thread count).
 *
 * What lives where:
 *   - weights (prepareWeight, beginWeight, prepareQuantized) go to the current shard while its weight bytes
 *     stay within its budget (the memory limit minus 1/8 headroom for the per-call scratch of its products),
 *     then to the next shard; the last shard takes whatever still fits under its hard limit (so with one
 *     shard this is exactly the single-memory backend). A WeakMap handle → shard routes matmul, matmulPrefix,
 *     matmulQuantized, unpackWeight, repackWeight and freeWeight; a handle this backend did not place goes
 *     to shard 0, which throws the usual typed E_MATMUL_HANDLE error (freed handles stay mapped, so their
 *     own shard says "already freed").
 *   - matmulTransient, siluMul, allocKv and attention run on shard 0 (transient products and the KV cache
 *     live there). Should shard 0 be too full for the KV cache, allocKv falls back to the other shards (last
 *     first); attention then follows the cache: it is routed by the K view (WeakMap K array → shard).
 *   - Shard creation is async (workers start) while prepare* is synchronous, so `reserve(bytes, tensors)`
 *     creates enough shards up front (simulating the placement of `tensors`, each weight's bytes in preparation
 *     order, when given); the model loader calls it with over-estimates of the packed bytes (build-model.ts).
 *     A weight that fits nowhere without it gets E_WASM_OOM naming reserve().
 *
 * Workers: each shard has its own pool of threads − 1 workers, so with S shards there are S·(threads − 1)
 * workers, and a product on shard i runs while the workers of the shard used just before it may still be
 * spinning (default spin 1000 µs) for a next job that will not come — stealing cores. With more than one
 * shard the pools are therefore started with a short spin (MULTI_SHARD_SPIN_US = 100 µs in wasm-backend.ts):
 * still longer than the gaps between the products of one layer (norms, RoPE: a few µs to tens of µs), so
 * back-to-back products on one shard keep the cheap hand-off, but an idle pool goes to sleep within 100 µs
 * of a switch to another shard. When reserve() first grows past one shard and shard 0 holds nothing yet, it
 * is re-created with the short spin too; an explicit spinMicros is always used as given.
 */
import { EdgeqError } from '../core/errors.js';
import type { QuantizedWeight } from '../qtypes/types.js';
import type { AttentionArgs, KvStorage, MatmulBackend, PrepareQuantizedOptions, QuantWeightHandle, WeightHandle, WeightWriter } from './backend.js';
import { makePlan } from './lowbit-plan.js';
import type { WasmBackend } from './wasm-backend-core.js';

/** Share of a shard's memory limit kept free of weights, for the scratch of its products. */
export const SHARD_HEADROOM = 1 / 8;

export interface ShardedBackendOptions {
  /** Memory limit of each shard in bytes (what its WasmHeap may grow to). */
  maxMemoryBytes: number;
  /** Weight bytes placed on a shard before the next one is used; default maxMemoryBytes·(1 − SHARD_HEADROOM). */
  shardWeightBytes?: number;
  /** Creates a shard; `multi`: the backend has (or is about to have) more than one shard. */
  createShard(multi: boolean): Promise<WasmBackend>;
  /** When reserve() grows past one shard while shard 0 was never used, re-create shard 0 with multi = true. */
  respinFirst?: boolean;
}

interface Shard {
  readonly be: WasmBackend;
  readonly index: number;
  /** Bytes of the live weights placed here (as estimated before placing). */
  weightBytes: number;
  weights: number;
  /** Anything (weight, weight writer, KV cache) was ever placed here. */
  used: boolean;
}

interface Placed {
  readonly shard: Shard;
  readonly bytes: number;
  freed: boolean;
}

export interface ShardStats {
  weights: number;
  weightBytes: number;
}

const mib = (b: number): string => (b / 2 ** 20).toFixed(1);

function isOom(err: unknown): err is EdgeqError {
  return err instanceof EdgeqError && err.code === 'E_WASM_OOM';
}

export class ShardedBackend implements MatmulBackend {
  readonly name = 'wasm';
  /** Weight bytes per shard before the next is used. */
  readonly shardWeightBytes: number;
  readonly maxMemoryBytes: number;
  private readonly shards: Shard[];
  private readonly placed = new WeakMap<object, Placed>();
  private readonly kvShard = new WeakMap<Float32Array, WasmBackend>();
  /** First shard that may still take weights. */
  private cur = 0;
  private pending: Promise<void> = Promise.resolve();
  private disposed = false;

  constructor(
    first: WasmBackend,
    private readonly opts: ShardedBackendOptions,
  ) {
    this.maxMemoryBytes = opts.maxMemoryBytes;
    this.shardWeightBytes = Math.max(1, Math.floor(opts.shardWeightBytes ?? opts.maxMemoryBytes * (1 - SHARD_HEADROOM)));
    this.shards = [this.newShard(first, 0)];
  }

  private newShard(be: WasmBackend, index: number): Shard {
    return { be, index, weightBytes: 0, weights: 0, used: false };
  }

  get threads(): number {
    return this.shards[0]!.be.threads;
  }

  /** Number of shards (WebAssembly memories) in use. */
  get shardCount(): number {
    return this.shards.length;
  }

  /** Live weights and their bytes per shard. */
  shardStats(): ShardStats[] {
    return this.shards.map((s) => ({ weights: s.weights, weightBytes: s.weightBytes }));
  }

  /** Index of the shard holding h, or -1 when this backend did not place it. */
  shardOf(h: WeightHandle): number {
    return this.placed.get(h)?.shard.index ?? -1;
  }

  private live(): void {
    if (this.disposed) throw new EdgeqError('E_DISPOSED', 'this wasm backend was disposed');
  }

  /**
   * Creates the shards `bytes` of weights need from the current shard on. With `tensors` (each weight's bytes,
   * in the order they will be prepared) their placement is simulated with the rule prepare* uses; without,
   * each shard is counted as able to take its whole weight budget.
   */
  reserve(bytes: number, tensors?: readonly number[]): Promise<void> {
    const p = this.pending.then(() => this.grow(bytes, tensors));
    this.pending = p.catch(() => undefined);
    return p;
  }

  /** Shards to add so that `bytes` (or `tensors`, placed in order) fit from the current shard on. */
  private shardsNeeded(bytes: number, tensors: readonly number[] | undefined): number {
    const budget = this.shardWeightBytes;
    const used = this.shards.slice(this.cur).map((s) => s.weightBytes);
    if (!tensors) {
      let free = 0;
      for (const u of used) free += Math.max(0, budget - u);
      return free >= bytes ? 0 : Math.ceil((bytes - free) / budget);
    }
    let i = 0;
    for (const b of tensors) {
      while (i < used.length && used[i]! > 0 && used[i]! + b > budget) i++;
      if (i === used.length) used.push(0);
      used[i]! += b;
    }
    return used.length - (this.shards.length - this.cur);
  }

  private async grow(bytes: number, tensors: readonly number[] | undefined): Promise<void> {
    this.live();
    const all = [bytes, ...(tensors ?? [])];
    if (!all.every((b) => Number.isFinite(b) && b >= 0)) {
      throw new EdgeqError('E_USAGE', `reserve needs finite non-negative byte counts, got ${all.find((b) => !(Number.isFinite(b) && b >= 0))}`);
    }
    const largest = (tensors ?? []).reduce((a, b) => Math.max(a, b), 0);
    if (largest > this.maxMemoryBytes) {
      throw new EdgeqError(
        'E_WASM_OOM',
        `a ${mib(largest)} MiB tensor cannot fit in one WebAssembly memory of at most ${mib(this.maxMemoryBytes)} MiB (weights are split per tensor, never within one)`,
        'use fewer bits or a smaller model',
      );
    }
    let extra = this.shardsNeeded(bytes, tensors);
    if (extra <= 0) return;
    if (this.opts.respinFirst && this.shards.length === 1 && !this.shards[0]!.used) {
      const old = this.shards[0]!.be;
      const be = await this.opts.createShard(true);
      if (this.disposed) {
        await be.dispose();
        this.live();
      }
      if (!this.shards[0]!.used) {
        this.shards[0] = this.newShard(be, 0);
        await old.dispose();
      } else {
        // shard 0 got a weight while the new one started (reserve was not awaited): keep both
        this.shards.push(this.newShard(be, this.shards.length));
        extra--;
      }
    }
    for (let j = 0; j < extra; j++) {
      const be = await this.opts.createShard(true);
      if (this.disposed) {
        await be.dispose();
        this.live();
      }
      this.shards.push(this.newShard(be, this.shards.length));
    }
  }

  /**
   * Makes `make` on the first shard (from cur) whose budget still has `bytes`; the last shard is tried whatever
   * its budget (up to its hard limit), and over-budget shards are retried last should that fail.
   */
  private place<T>(bytes: number, make: (be: WasmBackend) => T): { value: T; shard: Shard } {
    this.live();
    const skipped: Shard[] = [];
    let oom: EdgeqError | undefined;
    const tryOn = (s: Shard): { value: T; shard: Shard } | undefined => {
      try {
        const value = make(s.be);
        s.used = true;
        s.weightBytes += bytes;
        s.weights++;
        return { value, shard: s };
      } catch (err) {
        if (!isOom(err)) throw err;
        oom = err;
        return undefined;
      }
    };
    for (let i = this.cur; i < this.shards.length; i++) {
      const s = this.shards[i]!;
      if (i < this.shards.length - 1 && s.weightBytes > 0 && s.weightBytes + bytes > this.shardWeightBytes) {
        skipped.push(s);
        continue;
      }
      const r = tryOn(s);
      if (r) {
        this.cur = i;
        return r;
      }
    }
    for (const s of skipped) {
      const r = tryOn(s);
      if (r) return r;
    }
    throw this.outOfMemory(bytes, oom);
  }

  private outOfMemory(bytes: number, cause: EdgeqError | undefined): EdgeqError {
    const n = this.shards.length;
    const use = this.shards.map((s) => mib(s.weightBytes)).join(', ');
    return new EdgeqError(
      'E_WASM_OOM',
      `cannot place a ${mib(bytes)} MiB weight: ${n === 1 ? 'the WebAssembly memory is' : `all ${n} WebAssembly memories (shards) are`} full ` +
        `(limit ${mib(this.maxMemoryBytes)} MiB each, wasm32 addresses at most 4 GiB; weights per shard: ${use} MiB)` +
        (bytes > this.maxMemoryBytes ? '' : '; reserve() room for the weights before preparing them') +
        (cause ? ` — ${cause.message}` : ''),
      bytes > this.maxMemoryBytes
        ? 'one tensor must fit in one memory: use fewer bits or a smaller model'
        : 'call `await backend.reserve(totalWeightBytes)` before preparing the weights (loadModel does) so that they are spread over more WebAssembly memories; or use fewer bits or a smaller model',
    );
  }

  private release(p: Placed): void {
    if (p.freed) return;
    p.freed = true;
    p.shard.weightBytes -= p.bytes;
    p.shard.weights--;
    this.cur = Math.min(this.cur, p.shard.index);
  }

  /** The shard that holds h; a foreign handle goes to shard 0, which rejects it with the usual error. */
  private route(h: WeightHandle): WasmBackend {
    this.live();
    return (this.placed.get(h)?.shard ?? this.shards[0]!).be;
  }

  prepareWeight(w: Float32Array, n: number, k: number): WeightHandle {
    const bytes = this.denseBytes(n, k);
    const { value, shard } = this.place(bytes, (be) => be.prepareWeight(w, n, k));
    this.placed.set(value, { shard, bytes, freed: false });
    return value;
  }

  private denseBytes(n: number, k: number): number {
    const NR = this.shards[0]!.be.NR;
    const b = Math.ceil(n / NR) * NR * k * 4;
    return Number.isFinite(b) && b >= 0 ? b : 0; // bad shapes: the shard throws its E_MATMUL_SHAPE
  }

  beginWeight(n: number, k: number): WeightWriter {
    const bytes = this.denseBytes(n, k);
    const { value: inner, shard } = this.place(bytes, (be) => be.beginWeight(n, k));
    const p: Placed = { shard, bytes, freed: false };
    let finished = false;
    return {
      n: inner.n,
      k: inner.k,
      rowAlign: inner.rowAlign,
      get rowsWritten(): number {
        return inner.rowsWritten;
      },
      write: (band: Float32Array, rows: number): void => inner.write(band, rows),
      finish: (): WeightHandle => {
        const h = inner.finish();
        finished = true;
        this.placed.set(h, p);
        return h;
      },
      abort: (): void => {
        inner.abort();
        if (!finished) this.release(p); // an unfinished writer's bytes go back
      },
    };
  }

  prepareQuantized(q: QuantizedWeight, opts: PrepareQuantizedOptions = {}): QuantWeightHandle {
    this.live();
    const bytes = makePlan(q, opts.kernel).packedBytes;
    const { value, shard } = this.place(bytes, (be) => be.prepareQuantized(q, opts));
    this.placed.set(value, { shard, bytes, freed: false });
    return value;
  }

  freeWeight(w: WeightHandle): void {
    const p = this.placed.get(w);
    if (!p) {
      this.shards[0]!.be.freeWeight(w); // not ours: a no-op, as on a single backend
      return;
    }
    p.shard.be.freeWeight(w);
    this.release(p);
  }

  unpackWeight(h: WeightHandle): Float32Array {
    return this.route(h).unpackWeight(h);
  }

  repackWeight(h: WeightHandle, w: Float32Array): void {
    this.route(h).repackWeight(h, w);
  }

  matmul(x: Float32Array, m: number, w: WeightHandle, out?: Float32Array): Float32Array {
    return this.route(w).matmul(x, m, w, out);
  }

  matmulPrefix(x: Float32Array, m: number, w: WeightHandle, rows: number, out?: Float32Array): Float32Array {
    return this.route(w).matmulPrefix(x, m, w, rows, out);
  }

  matmulQuantized(x: Float32Array, m: number, h: QuantWeightHandle, out?: Float32Array): Float32Array {
    return this.route(h).matmulQuantized(x, m, h, out);
  }

  matmulTransient(a: Float32Array, m: number, b: Float32Array, n: number, k: number, out?: Float32Array): Float32Array {
    this.live();
    return this.shards[0]!.be.matmulTransient(a, m, b, n, k, out);
  }

  siluMul(gate: Float32Array, up: Float32Array): void {
    this.live();
    this.shards[0]!.be.siluMul(gate, up);
  }

  /** On shard 0; when it is full, on the shard with the most room left (the last first). */
  allocKv(numLayers: number, kvHeads: number, capacity: number, headDim: number): KvStorage {
    this.live();
    const order = [this.shards[0]!, ...this.shards.slice(1).reverse()];
    let first: unknown;
    for (const s of order) {
      let kv: KvStorage;
      try {
        kv = s.be.allocKv(numLayers, kvHeads, capacity, headDim);
      } catch (err) {
        if (!isOom(err)) throw err;
        first ??= err;
        continue;
      }
      s.used = true;
      for (const a of kv.k) this.kvShard.set(a, s.be);
      return kv;
    }
    throw first;
  }

  attention(args: AttentionArgs): boolean {
    this.live();
    const be = this.kvShard.get(args.k);
    return be ? be.attention(args) : false;
  }

  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    await this.pending;
    await Promise.all(this.shards.map((s) => s.be.dispose()));
  }
}
