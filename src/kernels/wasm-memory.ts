/**
 * A first-fit free-list allocator over a (shared) WebAssembly.Memory, owned by the main thread.
 * Blocks are 64-byte aligned (one cache line; v128 loads never straddle a line at block starts);
 * freed neighbours are coalesced; memory grows on demand (it never shrinks — wasm memories cannot).
 * Workers never allocate: they only run kernels on addresses the main thread hands them.
 */
import { EdgeqError } from '../core/errors.js';
import type { WasmMemory } from './wasm-api.js';

export const WASM_ALIGN = 64;
const PAGE = 65536;

interface FreeBlock {
  ptr: number;
  size: number;
}

function alignUp(v: number, a: number): number {
  return Math.ceil(v / a) * a;
}

/** Every WasmHeap still reachable, for memory tracing (wasmHeapStats). */
const heaps = new Set<WeakRef<WasmHeap>>();

export interface WasmHeapStats {
  label: string;
  /** Size of the memory (what it grew to; it never shrinks). */
  capacity: number;
  /** Bytes handed out and not freed. */
  inUse: number;
  /** Largest free block below the bump pointer (what the next allocation can reuse without growing). */
  largestFree: number;
}

/** Capacity and use of every live WasmHeap (e.g. 'matmul', 'linalg64'). */
export function wasmHeapStats(): WasmHeapStats[] {
  const out: WasmHeapStats[] = [];
  for (const ref of heaps) {
    const h = ref.deref();
    if (!h) heaps.delete(ref);
    else out.push({ label: h.label, capacity: h.capacity, inUse: h.bytesInUse, largestFree: h.largestFree });
  }
  return out;
}

export class WasmHeap {
  /** A name for memory traces ('matmul', 'linalg64'). */
  label = 'wasm';
  private readonly live = new Map<number, number>(); // ptr -> size
  private readonly freeList: FreeBlock[] = []; // sorted by ptr, no two adjacent
  private top: number; // first byte never handed out
  private f32View: Float32Array;
  private i32View: Int32Array;
  private u8View: Uint8Array;

  constructor(
    readonly memory: WasmMemory,
    base: number,
    /** Upper bound of the memory (default 4 GiB, the wasm32 limit). */
    readonly maxBytes = 65536 * PAGE,
  ) {
    this.top = alignUp(Math.max(base, WASM_ALIGN), WASM_ALIGN);
    this.f32View = new Float32Array(memory.buffer);
    this.i32View = new Int32Array(memory.buffer);
    this.u8View = new Uint8Array(memory.buffer);
    heaps.add(new WeakRef(this));
  }

  /** A Float32Array over the whole memory (refreshed after growth). Index = byte address / 4. */
  get f32(): Float32Array {
    if (this.f32View.buffer.byteLength !== this.memory.buffer.byteLength) this.refresh();
    return this.f32View;
  }

  get i32(): Int32Array {
    if (this.i32View.buffer.byteLength !== this.memory.buffer.byteLength) this.refresh();
    return this.i32View;
  }

  get u8(): Uint8Array {
    if (this.u8View.buffer.byteLength !== this.memory.buffer.byteLength) this.refresh();
    return this.u8View;
  }

  /** Bytes currently handed out (after alignment). */
  get bytesInUse(): number {
    let s = 0;
    for (const v of this.live.values()) s += v;
    return s;
  }

  /** Largest free block below the bump pointer, bytes. */
  get largestFree(): number {
    let m = 0;
    for (const b of this.freeList) m = Math.max(m, b.size);
    return m;
  }

  /** Current size of the memory in bytes. */
  get capacity(): number {
    return this.memory.buffer.byteLength;
  }

  /** Returns a 64-byte aligned address of at least `bytes` bytes (contents unspecified). */
  alloc(bytes: number): number {
    if (!Number.isFinite(bytes) || bytes < 0) throw new EdgeqError('E_WASM_ALLOC', `bad allocation size ${bytes}`);
    const size = alignUp(Math.max(bytes, 1), WASM_ALIGN);
    for (let i = 0; i < this.freeList.length; i++) {
      const b = this.freeList[i]!;
      if (b.size < size) continue;
      const ptr = b.ptr;
      if (b.size === size) this.freeList.splice(i, 1);
      else {
        b.ptr += size;
        b.size -= size;
      }
      this.live.set(ptr, size);
      return ptr;
    }
    const ptr = this.top;
    this.ensure(ptr + size);
    this.top = ptr + size;
    this.live.set(ptr, size);
    return ptr;
  }

  free(ptr: number): void {
    const size = this.live.get(ptr);
    if (size === undefined) throw new EdgeqError('E_WASM_ALLOC', `free of unknown address ${ptr}`);
    this.live.delete(ptr);
    // insert sorted, then merge with neighbours
    let lo = 0;
    let hi = this.freeList.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.freeList[mid]!.ptr < ptr) lo = mid + 1;
      else hi = mid;
    }
    this.freeList.splice(lo, 0, { ptr, size });
    const next = this.freeList[lo + 1];
    const cur = this.freeList[lo]!;
    if (next && cur.ptr + cur.size === next.ptr) {
      cur.size += next.size;
      this.freeList.splice(lo + 1, 1);
    }
    const prev = this.freeList[lo - 1];
    if (prev && prev.ptr + prev.size === cur.ptr) {
      prev.size += cur.size;
      this.freeList.splice(lo, 1);
    }
    // give the topmost free block back to the bump region
    const last = this.freeList[this.freeList.length - 1];
    if (last && last.ptr + last.size === this.top) {
      this.top = last.ptr;
      this.freeList.pop();
    }
  }

  private ensure(end: number): void {
    const have = this.memory.buffer.byteLength;
    if (end <= have) return;
    if (end > this.maxBytes) {
      throw new EdgeqError(
        'E_WASM_OOM',
        `wasm memory would need ${(end / 2 ** 20).toFixed(0)} MiB, more than the ${(this.maxBytes / 2 ** 20).toFixed(0)} MiB limit`,
        'use a smaller model or a lower-precision format',
      );
    }
    // grow geometrically (at least 1/8 of the current size) to keep the number of grows small
    const need = Math.ceil((end - have) / PAGE);
    const pages = Math.min(Math.max(need, Math.ceil(have / PAGE / 8)), this.maxBytes / PAGE - have / PAGE);
    try {
      this.memory.grow(pages);
    } catch (err) {
      throw new EdgeqError('E_WASM_OOM', `cannot grow wasm memory by ${pages} pages: ${String(err)}`);
    }
    this.refresh();
  }

  private refresh(): void {
    this.f32View = new Float32Array(this.memory.buffer);
    this.i32View = new Int32Array(this.memory.buffer);
    this.u8View = new Uint8Array(this.memory.buffer);
  }
}

/** A growable scratch region inside the heap (reused across calls). */
export class Scratch {
  ptr = 0;
  size = 0;
  constructor(private readonly heap: WasmHeap) {}
  need(bytes: number): number {
    if (bytes > this.size) {
      if (this.size > 0) this.heap.free(this.ptr);
      this.size = Math.max(bytes, Math.ceil(this.size * 1.25));
      this.ptr = this.heap.alloc(this.size);
    }
    return this.ptr;
  }
}

