/**
 * Linalg64 on WebAssembly: the blocked drivers of linalg64.ts with the f64x2 SIMD kernel of
 * src/kernels/assembly/linalg64.ts (dpackB + dgemmP), multithreaded over rows with worker_threads.
 *
 * It owns its own instance of build/kernels.wasm over its own shared memory (not the matmul backend's),
 * sized on demand to [matrix (n, n) | t1 (n·nb) | t2 (n·nb) | packed B (n·(nb+4))] f64 — about 8·n² bytes
 * (512 MiB at n = 8192, the 4 GiB wasm limit allows n ≈ 22000). WebAssembly memories never shrink:
 * dispose() the instance to release it. matrix(n) hands out the matrix area itself, so a Hessian
 * accumulated there is inverted in place (cholInverseUpperInPlace) with no second n×n copy anywhere.
 */
import os from 'node:os';
import { EdgeqError } from '../core/errors.js';
import { ThreadPool, type Job } from '../kernels/thread-pool.js';
import { wasm } from '../kernels/wasm-api.js';
import { loadKernelModule } from '../kernels/wasm-backend.js';
import { WasmHeap } from '../kernels/wasm-memory.js';
import { choleskyBlocked, cholInverseUpperWs, DEFAULT_NB, invLowerBlocked, isSameMatrix, type Gemm64, type Linalg64, type Workspace } from './linalg64.js';

interface Linalg64Exports {
  dpackB(b: number, ldb: number, transB: number, k: number, n: number, dst: number): void;
  dgemmP(
    c: number, ldc: number, a: number, lda: number, bp: number, k: number, n: number,
    r0: number, r1: number, neg: number, tri: number, triOff: number, scratch: number,
  ): void;
  dgemmScratchBytes(): number;
  heapBase(): number;
}

/** Products smaller than this many multiply-adds run on the calling thread only. */
const PARALLEL_MIN_MACS = 1 << 18;

/**
 * Splits rows [0, m) into `parts` ranges (starts multiple of 4) of about equal work, where row i costs
 * min(cap, i + off + 1) (triangular modes) or 1 (dense).
 */
function splitRows(m: number, parts: number, tri: number, off: number, cap: number): Array<[number, number]> {
  const cost = (i: number): number => (tri === 0 ? 1 : Math.max(0, Math.min(cap, i + off + 1)));
  let total = 0;
  for (let i = 0; i < m; i++) total += cost(i);
  const out: Array<[number, number]> = [];
  let start = 0;
  let acc = 0;
  for (let i = 0; i < m && out.length < parts - 1; i++) {
    acc += cost(i);
    if (acc >= (total * (out.length + 1)) / parts && (i + 1) % 4 === 0) {
      out.push([start, i + 1]);
      start = i + 1;
    }
  }
  out.push([start, m]);
  return out.filter(([a, b]) => b > a);
}

export async function createWasmLinalg64(opts: { threads?: number; nb?: number } = {}): Promise<Linalg64> {
  const threads = opts.threads ?? os.availableParallelism();
  if (!Number.isInteger(threads) || threads < 1 || threads > 256) {
    throw new EdgeqError('E_USAGE', `threads must be an integer in 1..256, got ${threads}`);
  }
  const nb = opts.nb ?? DEFAULT_NB;
  const module = await loadKernelModule();
  const memory = new wasm.Memory({ initial: 64, maximum: 65536, shared: true });
  const instance = await wasm.instantiate(module, {
    env: {
      memory,
      abort() {
        throw new EdgeqError('E_WASM_KERNEL', 'wasm kernel aborted');
      },
    },
  });
  const ex = instance.exports as unknown as Linalg64Exports;
  if (typeof ex.dgemmP !== 'function' || typeof ex.dpackB !== 'function' || ex.dgemmP.length !== 13) {
    throw new EdgeqError('E_WASM_STALE', 'build/kernels.wasm has no f64 linalg kernels (dgemmP)', 'rebuild it with `npm run build:wasm`');
  }
  const heap = new WasmHeap(memory, ex.heapBase());
  heap.label = 'linalg64';
  const scratch = Array.from({ length: threads }, () => heap.alloc(ex.dgemmScratchBytes())); // per-thread packed A
  const pool = threads > 1 ? await ThreadPool.create(module, memory, threads - 1, ['dgemmP'], 200) : undefined;
  let region = 0; // byte address of [matrix | t1 | t2 | packed B]
  let regionBytes = 0;
  let bpByte = 0;
  let disposed = false;

  const f64 = (): Float64Array => new Float64Array(memory.buffer);

  const gemm: Gemm64 = (_buf, c, ldc, a, lda, b, ldb, transB, m, n, k, alpha, tri, triOff) => {
    if (m === 0 || n === 0 || k === 0) return;
    if (alpha !== 1 && alpha !== -1) throw new Error(`wasm Gemm64 supports alpha = ±1, got ${alpha}`);
    ex.dpackB(b * 8, ldb, transB ? 1 : 0, k, n, bpByte);
    const neg = alpha < 0 ? 1 : 0;
    const parts = m * n * k < PARALLEL_MIN_MACS || !pool ? 1 : threads;
    const cap = tri === 1 ? n : k;
    const jobs = splitRows(m, parts, tri, triOff, cap).map(
      ([r0, r1], t): Job => ({ fn: 0, args: [c * 8, ldc, a * 8, lda, bpByte, k, n, r0, r1, neg, tri, triOff, scratch[t]!] }),
    );
    const local = (job: Job): void => {
      const g = job.args;
      ex.dgemmP(g[0]!, g[1]!, g[2]!, g[3]!, g[4]!, g[5]!, g[6]!, g[7]!, g[8]!, g[9]!, g[10]!, g[11]!, g[12]!);
    };
    if (jobs.length === 1 || !pool) jobs.forEach(local);
    else pool.run(jobs, local);
  };

  // Makes room for an n×n problem and returns its workspace (matrix at element offset ws.t1 − n·n).
  const workspace = (n: number): { ws: Workspace; a: number } => {
    if (disposed) throw new EdgeqError('E_DISPOSED', 'this wasm linalg64 was disposed');
    const elems = n * n + 2 * n * nb + n * (nb + 4);
    if (elems * 8 > regionBytes) {
      if (regionBytes > 0) heap.free(region);
      regionBytes = elems * 8;
      region = heap.alloc(regionBytes);
    }
    const a = region / 8;
    bpByte = (a + n * n + 2 * n * nb) * 8;
    const ws: Workspace = { buf: f64(), gemm, nb, t1: a + n * n, t2: a + n * n + n * nb };
    return { ws, a };
  };

  // Copies a in, runs f, copies the matrix back out.
  const run = <T>(src: Float64Array, n: number, f: (ws: Workspace, a: number) => T): T => {
    const { ws, a } = workspace(n);
    ws.buf.set(src.subarray(0, n * n), a);
    const r = f(ws, a);
    src.set(ws.buf.subarray(a, a + n * n));
    return r;
  };

  return {
    name: `wasm(${threads})`,
    cholesky: (a, n, pivotTol = 0) => run(a, n, (ws, off) => choleskyBlocked(ws, off, n, pivotTol)),
    invLower: (l, n) => run(l, n, (ws, off) => invLowerBlocked(ws, off, n)),
    cholInverseUpper(h, n, o = {}) {
      const { ws, a } = workspace(n);
      const mat = ws.buf.subarray(a, a + n * n);
      mat.set(h.subarray(0, n * n));
      mat.reverse(); // J·H·J
      if (!choleskyBlocked(ws, a, n, o.pivotTol ?? 0)) return null;
      invLowerBlocked(ws, a, n);
      mat.reverse(); // U = J·L̃⁻¹·J
      const out = o.out ?? new Float64Array(n * n);
      out.set(mat);
      return out;
    },
    matrix(n) {
      const { ws, a } = workspace(n);
      return ws.buf.subarray(a, a + n * n);
    },
    cholInverseUpperInPlace(h, n, pivotTol = 0) {
      const { ws, a } = workspace(n);
      const mat = ws.buf.subarray(a, a + n * n);
      if (isSameMatrix(h, mat, n)) return cholInverseUpperWs(ws, a, n, pivotTol);
      mat.set(h.subarray(0, n * n));
      const ok = cholInverseUpperWs(ws, a, n, pivotTol);
      h.set(mat);
      return ok;
    },
    async dispose() {
      if (disposed) return;
      disposed = true;
      await pool?.dispose();
    },
  };
}
