/**
 * Causal attention on the WASM backend (assembly/attention.ts) over a KV cache stored in the backend's own
 * memory, so that a decode step reads keys and values in place instead of copying and transposing them
 * for two transient matmuls (what the TypeScript path in src/infer/attention.ts does, and stays the
 * reference for). Work items (query head, token) are split over the thread pool.
 */
import { EdgeqError } from '../core/errors.js';
import type { AttentionArgs, KvStorage } from './backend.js';
import type { Job } from './thread-pool.js';
import { Scratch, type WasmHeap } from './wasm-memory.js';

export const ATTENTION_FNS = ['attnRows'] as const;

/** Below this many multiply-adds (scores + weighted sum) attention runs on the calling thread only. */
const PARALLEL_MIN_MACS = 1 << 15;

interface KvBlock {
  ptr: number;
  /** Byte offset of each layer's K and V (kvHeads, capacity, headDim) inside the block. */
  layerBytes: number;
}

export interface AttentionHost {
  readonly heap: WasmHeap;
  readonly threads: number;
  /** Index of ATTENTION_FNS[0] in the pool's function list. */
  readonly fnBase: number;
  run(jobs: Job[]): void;
}

export class AttentionRunner {
  private readonly qBuf: Scratch;
  private readonly oBuf: Scratch;
  private readonly pBuf: Scratch;
  /** Every K/V view handed out by allocKv → its address in the heap. */
  private readonly views = new WeakMap<Float32Array, number>();

  constructor(private readonly host: AttentionHost) {
    this.qBuf = new Scratch(host.heap);
    this.oBuf = new Scratch(host.heap);
    this.pBuf = new Scratch(host.heap);
  }

  /** K and V of every layer as Float32Array views into the heap (one allocation; free() gives it back). */
  allocKv(numLayers: number, kvHeads: number, capacity: number, headDim: number): KvStorage {
    const heap = this.host.heap;
    const floats = kvHeads * capacity * headDim;
    const layerBytes = Math.ceil((floats * 4) / 64) * 64;
    const block: KvBlock = { ptr: heap.alloc(Math.max(64, 2 * numLayers * layerBytes)), layerBytes };
    const buffer = heap.memory.buffer;
    const k: Float32Array[] = [];
    const v: Float32Array[] = [];
    for (let l = 0; l < numLayers; l++) {
      const kp = block.ptr + 2 * l * layerBytes;
      const vp = kp + layerBytes;
      const kv = new Float32Array(buffer, kp, floats);
      const vv = new Float32Array(buffer, vp, floats);
      this.views.set(kv, kp);
      this.views.set(vv, vp);
      k.push(kv);
      v.push(vv);
    }
    let freed = false;
    return {
      k,
      v,
      free: () => {
        if (freed) return;
        freed = true;
        for (const a of k) this.views.delete(a);
        for (const a of v) this.views.delete(a);
        heap.free(block.ptr);
      },
    };
  }

  /** Runs attention when a.k and a.v are views from allocKv; false (nothing done) otherwise. */
  attention(a: AttentionArgs): boolean {
    const kp = this.views.get(a.k);
    const vp = this.views.get(a.v);
    if (kp === undefined || vp === undefined) return false;
    const { T, pos0, nHeads, kvHeads, headDim: d, capacity } = a;
    if (nHeads % kvHeads !== 0) throw new EdgeqError('E_MATMUL_SHAPE', `${nHeads} query heads do not divide into ${kvHeads} KV heads`);
    if (pos0 + T > capacity) throw new EdgeqError('E_MATMUL_SHAPE', `attention over ${pos0 + T} positions exceeds the cache capacity ${capacity}`);
    const rows = T * nHeads * d;
    if (a.q.length < rows || a.out.length < rows) throw new EdgeqError('E_MATMUL_SHAPE', `q/out hold fewer than T·nHeads·headDim = ${rows} values`);
    const S = pos0 + T;
    const items = nHeads * T;
    // causal: item (head, t) reads pos0 + t + 1 positions, twice over d
    const macs = 2 * d * nHeads * (T * pos0 + (T * (T + 1)) / 2);
    const parts = macs < PARALLEL_MIN_MACS ? 1 : Math.min(this.host.threads, items);
    const heap = this.host.heap;
    const qp = this.qBuf.need(rows * 4);
    const op = this.oBuf.need(rows * 4);
    const pStride = 4 * Math.ceil((S * 4) / 64) * 64; // four score rows of S floats, 64-byte aligned (as the kernel cuts them)
    const pp = this.pBuf.need(parts * pStride);
    heap.f32.set(a.q.subarray(0, rows), qp >>> 2);
    const jobs: Job[] = [];
    for (let j = 0; j < parts; j++) {
      const f0 = cut(items, T, parts, j);
      const f1 = cut(items, T, parts, j + 1);
      jobs.push({ fn: this.host.fnBase, args: [qp, op, T, nHeads, d, pos0, nHeads / kvHeads, kp, vp, capacity, pp + j * pStride, f0, f1] });
    }
    this.host.run(jobs);
    a.out.set(heap.f32.subarray(op >>> 2, (op >>> 2) + rows));
    return true;
  }
}

/** Start of share j of `parts` over items f = head·T + t: whole heads when there are enough (each costs the same), else even cuts. */
function cut(items: number, T: number, parts: number, j: number): number {
  if (j === 0) return 0;
  if (j === parts) return items;
  const heads = items / T;
  if (heads >= parts * 2 || T === 1) return Math.round((heads * j) / parts) * T;
  return Math.round((items * j) / parts);
}
