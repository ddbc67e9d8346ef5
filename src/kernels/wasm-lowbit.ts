/**
 * The low-bit half of the WASM backend: packs QuantizedWeights into the shared memory (lowbit-pack.ts)
 * and runs the LUT / int8-dot kernels (assembly/lowbit-lut.ts, assembly/lowbit-q8.ts) over the thread pool.
 *
 * Per call: X is gathered (act-order) and padded into the heap, the activation side is prepared (int8
 * tables or int8 activations; tokens split over the threads when m > 1), then row tiles of Y are claimed
 * dynamically from an atomic counter by every thread (the split is over output rows), and Y is copied out.
 *
 * Prefill (m ≥ prefillMinTokens; int8 layout, LUT layout of ≥ 4 bits): int8 activations as for int8-dot, then the prefill GEMM
 * (assembly/lowbit-prefill.ts), which unpacks each 32-row tile's weights block by block into an int16 panel
 * in a per-thread scratch slot and runs an 8-row × 4-token i32x4.dot_i16x8_s micro-kernel over it, so the
 * unpacking is paid once per tile for all m tokens.
 */
import { EdgeqError } from '../core/errors.js';
import type { QuantizedWeight } from '../qtypes/types.js';
import type { QuantWeightHandle } from './backend.js';
import { packLowbit } from './lowbit-pack.js';
import {
  gatherActivations,
  LUT_TILE_ROWS,
  makePlan,
  PREFILL_SLOT_BYTES,
  PREFILL_TILE_ROWS,
  Q8_TILE_ROWS,
  type LowbitKernel,
  type LowbitPlan,
} from './lowbit-plan.js';
import type { Job } from './thread-pool.js';
import { Scratch, type WasmHeap } from './wasm-memory.js';

/** Wasm exports the pool runs for the low-bit kernels (appended to the backend's pool function list). */
export const LOWBIT_FNS = ['lutTables', 'lutGemmTiles', 'q8Acts', 'q8GemmTiles', 'prefillTiles'] as const;
const FN_LUT_TABLES = 0;
const FN_LUT_GEMM = 1;
const FN_Q8_ACTS = 2;
const FN_Q8_GEMM = 3;
const FN_PREFILL = 4;

/** Tiles per thread handed out dynamically. */
const CLAIMS_PER_THREAD = 8;

/**
 * Products with at least this many tokens (rows of X) run on the prefill GEMM; fewer (decode) on the
 * handle's own kernel. From bench:kernels (4-bit, 1 thread): the prefill GEMM is as fast as the LUT
 * kernel at m = 8 and faster from m = 16 on.
 */
export const DEFAULT_PREFILL_MIN_TOKENS = 8;
/**
 * LUT-layout weights of fewer bits stay on the LUT kernel at any m: its cost grows with the bits (one
 * table lookup pass per bit plane) while the prefill GEMM's does not; measured at m = 128, 1 thread, the
 * LUT kernel is ~1.4× faster for 2-bit, even for 3-bit, ~1.4× slower for 4-bit.
 */
export const DEFAULT_PREFILL_LUT_MIN_BITS = 4;
let prefillMinTokens = DEFAULT_PREFILL_MIN_TOKENS;
let prefillLutMinBits = DEFAULT_PREFILL_LUT_MIN_BITS;

/**
 * Sets the token count from which LowbitRunner.matmul uses the prefill GEMM (Infinity: never; 1: always,
 * as the tests do to cover small m). Process-wide; returns the previous value.
 */
export function setPrefillMinTokens(m: number): number {
  if (!(m >= 1)) throw new EdgeqError('E_USAGE', `prefill min tokens must be ≥ 1 (or Infinity), got ${m}`);
  const prev = prefillMinTokens;
  prefillMinTokens = m;
  return prev;
}

/** Sets the fewest bits of a LUT-layout weight that uses the prefill GEMM (2: all). Returns the previous value. */
export function setPrefillLutMinBits(bits: number): number {
  if (!(bits >= 2)) throw new EdgeqError('E_USAGE', `prefill LUT min bits must be ≥ 2, got ${bits}`);
  const prev = prefillLutMinBits;
  prefillLutMinBits = bits;
  return prev;
}

export class WasmQuantWeight implements QuantWeightHandle {
  readonly n: number;
  readonly k: number;
  readonly kernel: LowbitKernel;
  readonly bytes: number;
  constructor(
    public ptr: number,
    readonly plan: LowbitPlan,
    readonly owner: object,
  ) {
    this.n = plan.n;
    this.k = plan.k;
    this.kernel = plan.kernel;
    this.bytes = plan.packedBytes + (plan.perm ? plan.k * 4 : 0);
  }
}

export interface LowbitHost {
  readonly heap: WasmHeap;
  readonly threads: number;
  /** i32 claim counter (own cache line). */
  readonly counter: number;
  /** Index of LOWBIT_FNS[0] in the pool's function list. */
  readonly fnBase: number;
  /** Runs jobs[0] here and the rest on workers. */
  run(jobs: Job[]): void;
  /** Threads worth using for a product of this many multiply-adds. */
  parts(macs: number): number;
}

export class LowbitRunner {
  private readonly xsBuf: Scratch;
  private readonly actBuf: Scratch; // tables (LUT) or int16 activations (int8)
  private readonly metaBuf: Scratch;
  private readonly yBuf: Scratch;
  private readonly slotBuf: Scratch; // prefill: slot counter + one scratch slot per thread

  constructor(private readonly host: LowbitHost) {
    this.xsBuf = new Scratch(host.heap);
    this.actBuf = new Scratch(host.heap);
    this.metaBuf = new Scratch(host.heap);
    this.yBuf = new Scratch(host.heap);
    this.slotBuf = new Scratch(host.heap);
  }

  prepare(q: QuantizedWeight, kernel: LowbitKernel | undefined, owner: object): WasmQuantWeight {
    const plan = makePlan(q, kernel);
    const heap = this.host.heap;
    let ptr: number;
    try {
      ptr = heap.alloc(plan.packedBytes);
    } catch (err) {
      if (!(err instanceof EdgeqError) || err.code !== 'E_WASM_OOM') throw err;
      const mib = (b: number): string => (b / 2 ** 20).toFixed(1);
      throw new EdgeqError(
        'E_WASM_OOM',
        `cannot place a ${q.n}×${q.k} ${q.qtype} weight (${mib(plan.packedBytes)} MiB packed for the ${plan.kernel} kernel) in ` +
          `the WebAssembly memory: ${mib(heap.bytesInUse)} MiB already in use, limit ${mib(heap.maxBytes)} MiB (wasm32 addresses at most 4 GiB)`,
        'use fewer bits or a smaller model, or keep fewer tensors resident in this backend',
      );
    }
    try {
      packLowbit(q, plan, heap.u8.subarray(ptr, ptr + plan.packedBytes));
    } catch (err) {
      heap.free(ptr);
      throw err;
    }
    return new WasmQuantWeight(ptr, plan, owner);
  }

  free(h: WasmQuantWeight): void {
    if (h.ptr === 0) return;
    this.host.heap.free(h.ptr);
    h.ptr = 0;
  }

  /** y (m, n) = X · Ŵᵀ. */
  matmul(x: Float32Array, m: number, h: WasmQuantWeight, y: Float32Array): void {
    const { host } = this;
    const { plan } = h;
    const { kPad, nPad, n, numBlocks, blockLen } = plan;
    const heap = host.heap;
    const prefill = m >= prefillMinTokens && (plan.kernel === 'int8' || plan.bits >= prefillLutMinBits);
    const lut = plan.kernel === 'lut' && !prefill; // LUT tables, else int8 activations
    const tileRows = prefill ? PREFILL_TILE_ROWS : lut ? LUT_TILE_ROWS : Q8_TILE_ROWS;
    const tiles = Math.ceil(nPad / tileRows);
    const parts = host.parts(m * n * plan.k);
    // scratch first: allocations may grow (and so replace) the memory's buffer
    const xs = this.xsBuf.need(m * kPad * 4);
    const act = this.actBuf.need(m * kPad * (lut ? 4 : 2));
    const meta = this.metaBuf.need(m * numBlocks * 8);
    const yp = this.yBuf.need(m * tiles * tileRows * 4);
    const slots = prefill ? this.slotBuf.need(64 + host.threads * PREFILL_SLOT_BYTES) : 0;
    const f32 = heap.f32;
    gatherActivations(plan, x, m, f32, xs >>> 2);
    // activation side: split over tokens when there are several
    const prepParts = m > 1 && m * kPad >= 1 << 14 ? Math.min(parts, m) : 1;
    const prepFn = host.fnBase + (lut ? FN_LUT_TABLES : FN_Q8_ACTS);
    const prep: Job[] = [];
    for (let t = 0; t < prepParts; t++) {
      const t0 = Math.floor((m * t) / prepParts);
      const t1 = Math.floor((m * (t + 1)) / prepParts);
      prep.push({ fn: prepFn, args: [xs, m, kPad, blockLen, act, meta, t0, t1] });
    }
    host.run(prep);
    // the product: row tiles claimed dynamically
    const chunk = parts === 1 ? tiles : Math.max(1, Math.ceil(tiles / (CLAIMS_PER_THREAD * parts)));
    let job: Job;
    if (prefill) {
      const fmt = plan.kernel === 'lut' ? plan.bits : plan.bits === 8 ? 0 : 1;
      job = { fn: host.fnBase + FN_PREFILL, args: [h.ptr, act, meta, yp, m, nPad, kPad, blockLen, fmt, host.counter, chunk, slots] };
      heap.i32[slots >>> 2] = 0;
    } else if (lut) {
      job = { fn: host.fnBase + FN_LUT_GEMM, args: [h.ptr, act, meta, yp, m, nPad, kPad, plan.bits, blockLen, host.counter, chunk] };
    } else {
      job = { fn: host.fnBase + FN_Q8_GEMM, args: [h.ptr, act, meta, yp, m, nPad, kPad, blockLen, plan.bits === 8 ? 0 : 1, host.counter, chunk] };
    }
    heap.i32[host.counter >>> 2] = 0; // published to the workers by the store that hands out the job
    host.run(Array.from({ length: parts }, () => job));
    const out = heap.f32;
    const y0 = yp >>> 2;
    if (lut && m > 1) {
      // tile-major (tiles, m, 32) -> (m, n)
      const T = tileRows;
      for (let t = 0; t < tiles; t++) {
        const rows = Math.min(T, n - t * T);
        for (let i = 0; i < m; i++) {
          const s = y0 + (t * m + i) * T;
          y.set(out.subarray(s, s + rows), i * n + t * T);
        }
      }
    } else {
      const ld = tiles * tileRows; // (m, ld), ld ≥ n
      if (ld === n) y.set(out.subarray(y0, y0 + m * n));
      else for (let i = 0; i < m; i++) y.set(out.subarray(y0 + i * ld, y0 + i * ld + n), i * n);
    }
  }
}

export function checkQuantHandle(h: unknown, owner: object): WasmQuantWeight {
  if (!(h instanceof WasmQuantWeight) || h.owner !== owner) {
    throw new EdgeqError('E_MATMUL_HANDLE', 'quantized weight handle was not prepared by this wasm backend');
  }
  if (h.ptr === 0) throw new EdgeqError('E_MATMUL_HANDLE', 'quantized weight handle was already freed');
  return h;
}
