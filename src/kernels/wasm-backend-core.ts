/**
 * The WebAssembly SIMD matmul backend itself (see wasm-backend.ts for the overview): the WasmBackend class
 * over an instantiated build/kernels.wasm and its memory, with an optional worker pool. No Node.js imports,
 * so it also runs in a browser (single-threaded: createWasmBackendFromModule without a pool).
 */
import { EdgeqError } from '../core/errors.js';
import type { QuantizedWeight } from '../qtypes/types.js';
import {
  type AttentionArgs,
  type KvStorage,
  checkMatmulArgs,
  checkWeightArgs,
  checkWeightBand,
  checkWeightShape,
  type MatmulBackend,
  type PrepareQuantizedOptions,
  type QuantWeightHandle,
  type WeightHandle,
  type WeightWriter,
} from './backend.js';
import { PACKED_LAYOUT } from './lowbit-plan.js';
import type { Job, ThreadPool } from './thread-pool.js';
import { wasm, type WasmGlobal, type WasmMemory, type WasmModule } from './wasm-api.js';
import { ATTENTION_FNS, AttentionRunner } from './wasm-attention.js';
import { LOWBIT_FNS, LowbitRunner, WasmQuantWeight, checkQuantHandle } from './wasm-lowbit.js';
import { Scratch, WasmHeap } from './wasm-memory.js';

/** Problems smaller than this many multiply-adds run on the calling thread only. */
export const PARALLEL_MIN_MACS = 1 << 16;

/** Tiles per thread handed out dynamically: enough that a thread slowed by other load evens out. */
const TILES_PER_THREAD = 8;
/** Max row blocks per GEMM tile: 32 × MR = 160 rows × KC × 4 B = 240 KiB of packed X, in L2. */
const MAX_TILE_ROW_BLOCKS = 32;

type Fn = (...args: number[]) => void;
export interface KernelExports {
  PACKED_LAYOUT?: WasmGlobal; // (assembly/layout.ts; absent in builds older than the check)
  packX: Fn; // (x, m, k, rb0, rb1, xp)
  gemmTiles: Fn; // (xp, wp, y, m, n, k, counter, tileRB, tilePanels)
  gemvTiles: Fn; // (x, wp, y, n, k, counter, chunk)
  dotRows: Fn; // (a, b, y, m, k, ldy, j0, j1)
  lutTables: Fn; // (xs, m, kPad, blockLen, tab, tmeta, t0, t1)
  lutGemmTiles: Fn; // (w, tab, tmeta, y, m, nPad, kPad, fmt = bits [+ 16 without zero terms], blockLen, counter, chunk)
  q8Acts: Fn; // (xs, m, kPad, blockLen, xq, xmeta, t0, t1)
  q8GemmTiles: Fn; // (w, xq, xmeta, y, m, nPad, kPad, blockLen, nibble, counter, chunk)
  prefillTiles: Fn; // (w, xq, xmeta, y, m, nPad, kPad, blockLen, fmt, counter, chunk, scratch)
  attnRows: Fn; // (q, o, T, nHeads, d, pos0, rep, k, v, cap, p, f0, f1)
  siluMul: Fn; // (g, u, n)
  packW(src: number, dst: number, n: number, k: number): void;
  heapBase(): number;
  MR: WasmGlobal;
  NR: WasmGlobal;
}

/** Export names callable on workers; Job.fn indexes this list. */
export const POOL_FNS = ['packX', 'gemmTiles', 'gemvTiles', 'dotRows', ...LOWBIT_FNS, ...ATTENTION_FNS] as const;
const FN_LOWBIT_BASE = 4;
const FN_PACK_X = 0;
const FN_GEMM_TILES = 1;
const FN_GEMV_TILES = 2;
const FN_DOT = 3;

class WasmWeight implements WeightHandle {
  /** Storage lent out by unpackWeight: not a packed weight until repackWeight. */
  lent = false;
  constructor(
    readonly n: number,
    readonly k: number,
    public ptr: number,
    readonly owner: WasmBackend,
  ) {}
}

/** Splits [0, total) units into `parts` contiguous ranges whose starts are multiples of `grain`. */
function split(total: number, parts: number, grain: number): Array<[number, number]> {
  const groups = Math.ceil(total / grain);
  const p = Math.max(1, Math.min(parts, groups));
  const out: Array<[number, number]> = [];
  for (let t = 0; t < p; t++) {
    const g0 = Math.floor((groups * t) / p);
    const g1 = Math.floor((groups * (t + 1)) / p);
    out.push([g0 * grain, Math.min(g1 * grain, total)]);
  }
  return out;
}

/**
 * Tile shape [row blocks, panels] for gemmTiles: row tiles of at most MAX_TILE_ROW_BLOCKS (evenly
 * sized), then enough panel columns per row tile for ~TILES_PER_THREAD tiles per thread.
 */
function chooseTiles(rowBlocks: number, panels: number, threads: number): [number, number] {
  let tilesM = Math.ceil(rowBlocks / MAX_TILE_ROW_BLOCKS);
  if (threads === 1) return [Math.ceil(rowBlocks / tilesM), panels];
  const target = TILES_PER_THREAD * threads;
  const tilesN = Math.min(panels, Math.ceil(target / tilesM));
  if (tilesM * tilesN < target) tilesM = Math.min(rowBlocks, Math.ceil(target / tilesN)); // few panels: finer rows
  return [Math.ceil(rowBlocks / tilesM), Math.ceil(panels / tilesN)];
}

export class WasmBackend implements MatmulBackend {
  readonly name = 'wasm';
  private readonly MR: number;
  /** Rows per packed panel (a dense weight (n, k) takes ceil(n/NR)·NR·k·4 bytes). */
  readonly NR: number;
  private readonly counter: number; // i32 tile counter for gemmTiles/gemvTiles (own cache line)
  private readonly xBuf: Scratch;
  private readonly xpBuf: Scratch; // X packed into MR-row blocks
  private readonly yBuf: Scratch;
  private readonly bBuf: Scratch; // transient B, raw rows (staging for packW)
  private readonly bpBuf: Scratch; // transient B, packed panels
  private readonly lowbit: LowbitRunner;
  private readonly attn: AttentionRunner;
  private disposed = false;

  constructor(
    readonly threads: number,
    private readonly heap: WasmHeap,
    private readonly ex: KernelExports,
    private readonly pool: ThreadPool | undefined,
  ) {
    this.MR = ex.MR.value as number;
    this.NR = ex.NR.value as number;
    this.counter = heap.alloc(64);
    this.xBuf = new Scratch(heap);
    this.xpBuf = new Scratch(heap);
    this.yBuf = new Scratch(heap);
    this.bBuf = new Scratch(heap);
    this.bpBuf = new Scratch(heap);
    const counter = this.counter;
    this.lowbit = new LowbitRunner({
      heap,
      threads,
      counter,
      fnBase: FN_LOWBIT_BASE,
      run: (jobs) => this.run(jobs),
      parts: (macs) => (macs < PARALLEL_MIN_MACS ? 1 : threads),
    });
    this.attn = new AttentionRunner({ heap, threads, fnBase: POOL_FNS.indexOf(ATTENTION_FNS[0]), run: (jobs) => this.run(jobs) });
  }

  private live(): void {
    if (this.disposed) throw new EdgeqError('E_DISPOSED', 'this wasm backend was disposed');
  }

  private panelBytes(n: number, k: number): number {
    return Math.ceil(n / this.NR) * this.NR * k * 4;
  }

  // W (n, k) row-major -> panels at dst, staged through bBuf in chunks of whole panels. w may be a band
  // of the rows of a taller weight: row0 (a multiple of NR) is where it starts in that weight.
  private pack(dst: number, w: Float32Array, n: number, k: number, row0 = 0): void {
    const NR = this.NR;
    const rowsPerChunk = Math.max(NR, Math.floor((4 << 20) / Math.max(1, k * 4) / NR) * NR);
    for (let r0 = 0; r0 < n; r0 += rowsPerChunk) {
      const rows = Math.min(rowsPerChunk, n - r0);
      const stage = this.bBuf.need(rows * k * 4);
      this.heap.f32.set(w.subarray(r0 * k, (r0 + rows) * k), stage >>> 2);
      this.ex.packW(stage, dst + ((row0 + r0) / NR) * NR * k * 4, rows, k);
    }
  }

  prepareWeight(w: Float32Array, n: number, k: number): WeightHandle {
    this.live();
    checkWeightArgs(w, n, k);
    const ptr = this.heap.alloc(this.panelBytes(n, k));
    this.pack(ptr, w, n, k);
    return new WasmWeight(n, k, ptr, this);
  }

  /** prepareWeight band by band: bands of a multiple of NR rows are packed into their panels as they come. */
  beginWeight(n: number, k: number): WeightWriter {
    this.live();
    checkWeightShape(n, k);
    let ptr = this.heap.alloc(this.panelBytes(n, k));
    const wr = {
      n,
      k,
      rowAlign: this.NR,
      rowsWritten: 0,
      write: (band: Float32Array, rows: number): void => {
        this.live();
        if (ptr === 0) throw new EdgeqError('E_MATMUL_HANDLE', 'this weight writer was finished or aborted');
        checkWeightBand(wr, band, rows);
        this.pack(ptr, band, rows, k, wr.rowsWritten);
        wr.rowsWritten += rows;
      },
      finish: (): WeightHandle => {
        if (ptr === 0) throw new EdgeqError('E_MATMUL_HANDLE', 'this weight writer was finished or aborted');
        if (wr.rowsWritten !== n) throw new EdgeqError('E_MATMUL_SHAPE', `weight writer got ${wr.rowsWritten} of ${n} rows`);
        const h = new WasmWeight(n, k, ptr, this);
        ptr = 0;
        return h;
      },
      abort: (): void => {
        if (ptr !== 0 && !this.disposed) this.heap.free(ptr);
        ptr = 0;
      },
    };
    return wr;
  }

  prepareQuantized(q: QuantizedWeight, opts: PrepareQuantizedOptions = {}): QuantWeightHandle {
    this.live();
    return this.lowbit.prepare(q, opts.kernel, this);
  }

  matmulQuantized(x: Float32Array, m: number, h: QuantWeightHandle, out?: Float32Array): Float32Array {
    this.live();
    const w = checkQuantHandle(h, this);
    checkMatmulArgs(x, m, w.n, w.k, out);
    const y = out ?? new Float32Array(m * w.n);
    if (m === 0) return y;
    this.lowbit.matmul(x, m, w, y);
    return y;
  }

  siluMul(gate: Float32Array, up: Float32Array): void {
    this.live();
    const n = gate.length;
    if (up.length < n) throw new EdgeqError('E_MATMUL_SHAPE', `up has ${up.length} values, gate ${n}`);
    if (n === 0) return;
    const gp = this.xBuf.need(n * 4);
    const upp = this.yBuf.need(n * 4);
    const f32 = this.heap.f32;
    f32.set(gate, gp >>> 2);
    f32.set(up.subarray(0, n), upp >>> 2);
    this.ex.siluMul(gp, upp, n);
    gate.set(this.heap.f32.subarray(gp >>> 2, (gp >>> 2) + n));
  }

  allocKv(numLayers: number, kvHeads: number, capacity: number, headDim: number): KvStorage {
    this.live();
    return this.attn.allocKv(numLayers, kvHeads, capacity, headDim);
  }

  attention(args: AttentionArgs): boolean {
    this.live();
    return this.attn.attention(args);
  }

  freeWeight(w: WeightHandle): void {
    if (w instanceof WasmQuantWeight) {
      if (w.owner === this && !this.disposed) this.lowbit.free(w);
      return;
    }
    if (!(w instanceof WasmWeight) || w.owner !== this || w.ptr === 0 || this.disposed) return;
    this.heap.free(w.ptr);
    w.ptr = 0;
  }

  private weight(w: WeightHandle, lentOk = false): WasmWeight {
    this.live();
    if (!(w instanceof WasmWeight) || w.owner !== this) {
      throw new EdgeqError('E_MATMUL_HANDLE', 'weight handle was not prepared by this wasm backend');
    }
    if (w.ptr === 0) throw new EdgeqError('E_MATMUL_HANDLE', 'weight handle was already freed');
    if (w.lent && !lentOk) throw new EdgeqError('E_MATMUL_HANDLE', 'weight handle is lent out (unpackWeight) until repackWeight');
    return w;
  }

  /** The weight's panels (≥ n·k floats) as a row-major (n, k) array over the same wasm memory. */
  unpackWeight(h: WeightHandle): Float32Array {
    const w = this.weight(h);
    w.lent = true;
    return this.heap.f32.subarray(w.ptr >>> 2, (w.ptr >>> 2) + w.n * w.k);
  }

  /**
   * Packs values into h's own storage. When values is the array unpackWeight lent, this runs in place: rows
   * [r0, r0 + c) of a chunk (r0 a multiple of NR) occupy exactly the bytes their panels go to, and each
   * chunk is copied to the staging buffer before its panels are written.
   */
  repackWeight(h: WeightHandle, values: Float32Array): void {
    const w = this.weight(h, true);
    checkWeightArgs(values, w.n, w.k);
    this.pack(w.ptr, values, w.n, w.k);
    w.lent = false;
  }

  matmul(x: Float32Array, m: number, w: WeightHandle, out?: Float32Array): Float32Array {
    return this.matmulPrefix(x, m, w, w.n, out);
  }

  /**
   * The first `rows` rows of W are its first ceil(rows/NR) panels. The GEMM computes every value the same way
   * whatever the number of panels; the GEMV (m = 1) runs panels by fours, then singly with another summation
   * order, so there the product covers whole fours of panels (as the full product does) and is trimmed.
   */
  matmulPrefix(x: Float32Array, m: number, w: WeightHandle, rows: number, out?: Float32Array): Float32Array {
    const ww = this.weight(w);
    if (!Number.isInteger(rows) || rows < 0 || rows > ww.n) throw new EdgeqError('E_MATMUL_SHAPE', `rows must be an integer in 0..${ww.n}, got ${rows}`);
    const k = ww.k;
    checkMatmulArgs(x, m, rows, k, out);
    const y = out ?? new Float32Array(m * rows);
    if (m === 0 || rows === 0) return y;
    if (k === 0) return y.fill(0, 0, m * rows);
    const n = m === 1 ? Math.min(ww.n, Math.ceil(rows / (4 * this.NR)) * 4 * this.NR) : rows;
    if (n === rows) this.productPacked(x, m, ww.ptr, n, k, y);
    else y.set(this.productPacked(x, m, ww.ptr, n, k, new Float32Array(n)).subarray(0, rows));
    return y;
  }

  matmulTransient(a: Float32Array, m: number, b: Float32Array, n: number, k: number, out?: Float32Array): Float32Array {
    this.live();
    checkMatmulArgs(a, m, n, k, out, b);
    const y = out ?? new Float32Array(m * n);
    if (m === 0 || n === 0) return y;
    if (k === 0) return y.fill(0, 0, m * n);
    if (m < this.MR) {
      // few rows: row dot products on raw B (packing B would cost as much as the product)
      // A (m, k) · B (n, k)ᵀ -> Y (m, n)
      const ap = this.xBuf.need(m * k * 4);
      const bp = this.bBuf.need(n * k * 4);
      const yp = this.yBuf.need(m * n * 4);
      const heap = this.heap.f32;
      heap.set(a.subarray(0, m * k), ap >>> 2);
      heap.set(b.subarray(0, n * k), bp >>> 2);
      const parts = this.parts(m, n, k);
      const jobs = split(n, parts, 4).map(([j0, j1]): Job => ({ fn: FN_DOT, args: [ap, bp, yp, m, k, n, j0, j1] }));
      this.run(jobs);
      y.set(this.heap.f32.subarray(yp >>> 2, (yp >>> 2) + m * n));
      return y;
    }
    const wp = this.bpBuf.need(this.panelBytes(n, k));
    this.pack(wp, b, n, k);
    this.productPacked(a, m, wp, n, k, y);
    return y;
  }

  private parts(m: number, n: number, k: number): number {
    return m * n * k < PARALLEL_MIN_MACS ? 1 : this.threads;
  }

  // Y (m, n) = X (m, k) · Wᵀ with W packed at wp.
  private productPacked(x: Float32Array, m: number, wp: number, n: number, k: number, y: Float32Array): Float32Array {
    const { MR, NR } = this;
    const panels = Math.ceil(n / NR);
    const rowBlocks = Math.ceil(m / MR);
    const nPad = panels * NR;
    const xr = this.xBuf.need(m * k * 4);
    const yp = this.yBuf.need(rowBlocks * MR * nPad * 4);
    this.heap.f32.set(x.subarray(0, m * k), xr >>> 2);
    const parts = this.parts(m, n, k);
    const all = (job: Job): Job[] => Array.from({ length: parts }, () => job);
    if (m === 1) {
      // y (n,) = Wp · x (k,) over chunks of panels (multiples of 4, the gemv kernel's unit)
      const chunk = parts === 1 ? panels : Math.max(4, Math.ceil(panels / (TILES_PER_THREAD * parts) / 4) * 4);
      this.resetCounter();
      this.run(all({ fn: FN_GEMV_TILES, args: [xr, wp, yp, n, k, this.counter, chunk] }));
    } else {
      // X -> row blocks (in parallel unless tiny), then tiles of Y claimed dynamically
      const xp = this.xpBuf.need(rowBlocks * MR * k * 4);
      const packParts = m * k < 1 << 15 ? 1 : parts;
      this.run(split(rowBlocks, packParts, 1).map(([r0, r1]): Job => ({ fn: FN_PACK_X, args: [xr, m, k, r0, r1, xp] })));
      const [tileRB, tilePanels] = chooseTiles(rowBlocks, panels, parts);
      this.resetCounter();
      this.run(all({ fn: FN_GEMM_TILES, args: [xp, wp, yp, m, n, k, this.counter, tileRB, tilePanels] }));
    }
    const heap = this.heap.f32;
    const y0 = yp >>> 2;
    if (nPad === n) y.set(heap.subarray(y0, y0 + m * n));
    else for (let i = 0; i < m; i++) y.set(heap.subarray(y0 + i * nPad, y0 + i * nPad + n), i * n);
    return y;
  }

  private resetCounter(): void {
    // published to the workers by the seq-cst store that hands out the job
    this.heap.i32[this.counter >>> 2] = 0;
  }

  private readonly runLocal = (job: Job): void => {
    (this.ex[POOL_FNS[job.fn]!] as Fn)(...job.args);
  };

  private run(jobs: Job[]): void {
    try {
      if (jobs.length === 1 || !this.pool) for (const job of jobs) this.runLocal(job);
      else this.pool.run(jobs, this.runLocal);
    } catch (err) {
      if (err instanceof EdgeqError) throw err;
      throw new EdgeqError('E_WASM_KERNEL', `wasm kernel ${POOL_FNS[jobs[0]!.fn]} failed: ${String(err)}`);
    }
  }

  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    await this.pool?.dispose();
  }
}


/** Instantiates the kernels over `memory` (shared, as built) on the calling thread. */
export async function instantiateKernels(module: WasmModule, memory: WasmMemory): Promise<KernelExports> {
  const instance = await wasm.instantiate(module, {
    env: {
      memory,
      abort() {
        throw new EdgeqError('E_WASM_KERNEL', 'wasm kernel aborted');
      },
    },
  });
  const ex = instance.exports as unknown as KernelExports;
  checkPackedLayout(ex);
  return ex;
}

/** Refuses a kernels build that reads another packed layout than this code writes (lowbit-plan.ts PACKED_LAYOUT). */
export function checkPackedLayout(ex: Pick<KernelExports, 'PACKED_LAYOUT'>): void {
  const built = ex.PACKED_LAYOUT?.value as unknown;
  if (built !== PACKED_LAYOUT) {
    throw new EdgeqError(
      'E_WASM_STALE',
      `the wasm kernels read packed layout ${built === undefined ? '(unversioned)' : `v${built}`}, but this code packs v${PACKED_LAYOUT}: the kernels build is from other sources`,
      'run `npm run build:wasm` (or `npm install`) to rebuild build/kernels.wasm',
    );
  }
}

/**
 * A backend over a compiled kernels module: fresh shared memory, the calling thread plus the threads − 1
 * workers `pool` starts (none: single-threaded — what a browser page without workers uses).
 */
export async function createWasmBackendFromModule(module: WasmModule, threads = 1, pool?: (memory: WasmMemory) => Promise<ThreadPool | undefined>, maxBytes?: number): Promise<WasmBackend> {
  const maxPages = maxBytes === undefined ? 65536 : Math.max(1, Math.min(65536, Math.floor(maxBytes / 65536))); // maxBytes: a memory limit (tests, shards)
  const memory = new wasm.Memory({ initial: Math.min(64, maxPages), maximum: maxPages, shared: true });
  const ex = await instantiateKernels(module, memory);
  const heap = new WasmHeap(memory, ex.heapBase(), maxPages * 65536);
  heap.label = 'matmul';
  const p = threads > 1 && pool ? await pool(memory) : undefined;
  return new WasmBackend(p ? threads : 1, heap, ex, p);
}
