/**
 * The low-bit half of the WASM backend: packs QuantizedWeights into the shared memory (lowbit-pack.ts)
 * and runs the LUT / int8-dot kernels (assembly/lowbit-lut.ts, assembly/lowbit-q8.ts) over the thread pool.
 *
 * Per call: X is gathered (act-order) and padded into the heap, the activation side is prepared (int8
 * tables or int8 activations; tokens split over the threads when m > 1), then row tiles of Y are claimed
 * dynamically from an atomic counter by every thread (the split is over output rows), and Y is copied out.
 *
 * Prefill (usesPrefill: m ≥ 8 tokens, 4-bit LUT layout or ≤ 4-bit int8 layout): int8 activations as for int8-dot, then the prefill GEMM
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
 * When LowbitRunner.matmul uses the prefill GEMM instead of the handle's own kernel (measured with
 * bench:kernels and at m = 128 on 4096×4096, 1 thread):
 *   minTokens   m ≥ this (decode, m = 1, stays on the GEMV kernels): the prefill GEMM is level with the
 *               4-bit LUT kernel at m = 8 and ahead from m = 16 on
 *   lutMinBits  LUT-layout weights of fewer bits stay on the LUT kernel: its cost grows with the bits (one
 *               lookup pass per bit plane), the prefill GEMM's does not; the LUT kernel is ~1.4× faster at
 *               2-bit, level at 3-bit, ~1.4× slower at 4-bit
 *   maxBits     8-bit weights stay on int8-dot, which already is an i32x4.dot_i16x8_s kernel over u8 codes
 *               (4 rows × 2 tokens) and measured level with or ahead of the prefill GEMM
 */
export interface PrefillPolicy {
  minTokens: number;
  lutMinBits: number;
  maxBits: number;
}
export const DEFAULT_PREFILL_POLICY: Readonly<PrefillPolicy> = Object.freeze({ minTokens: 8, lutMinBits: 4, maxBits: 4 });
let policy: PrefillPolicy = { ...DEFAULT_PREFILL_POLICY };

/**
 * Changes the prefill policy process-wide (e.g. { minTokens: Infinity } turns the prefill GEMM off;
 * { minTokens: 1, lutMinBits: 2, maxBits: 8 } runs every product on it, as the tests do). Returns the
 * previous policy.
 */
export function setPrefillPolicy(p: Partial<PrefillPolicy>): PrefillPolicy {
  const next = { ...policy, ...p };
  if (!(next.minTokens >= 1)) throw new EdgeqError('E_USAGE', `prefill minTokens must be ≥ 1 (or Infinity), got ${next.minTokens}`);
  if (!(next.lutMinBits >= 2) || !(next.maxBits >= 2)) throw new EdgeqError('E_USAGE', 'prefill lutMinBits and maxBits must be ≥ 2');
  const prev = policy;
  policy = next;
  return prev;
}

/** Whether a product of m tokens with a weight of this plan runs on the prefill GEMM. */
export function usesPrefill(plan: LowbitPlan, m: number): boolean {
  return m >= policy.minTokens && plan.bits <= policy.maxBits && (plan.kernel === 'int8' || plan.bits >= policy.lutMinBits);
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
    const prefill = usesPrefill(plan, m);
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
      const fmt = plan.fmt === 2 && plan.kernel === 'int8' ? 0 : plan.fmt; // the prefill GEMM has no per-channel path
      job = { fn: host.fnBase + FN_PREFILL, args: [h.ptr, act, meta, yp, m, nPad, kPad, blockLen, fmt, host.counter, chunk, slots] };
      heap.i32[slots >>> 2] = 0;
    } else if (lut) {
      job = { fn: host.fnBase + FN_LUT_GEMM, args: [h.ptr, act, meta, yp, m, nPad, kPad, plan.fmt, blockLen, host.counter, chunk] };
    } else {
      job = { fn: host.fnBase + FN_Q8_GEMM, args: [h.ptr, act, meta, yp, m, nPad, kPad, blockLen, plan.fmt, host.counter, chunk] };
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
