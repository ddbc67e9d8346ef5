/**
 * A tiny synchronous fork/join pool of worker_threads running wasm kernels over one shared memory.
 *
 * Every worker instantiates the same WebAssembly.Module over the same shared WebAssembly.Memory. Jobs
 * are dispatched through a shared Int32Array control block, never through postMessage:
 *
 *   ctrl[PENDING]          jobs not yet finished (the caller waits for 0)
 *   ctrl[FAILED]           number of jobs that threw
 *   ctrl[QUIT]             1 = workers exit their loop
 *   ctrl[slot(w) + SEQ]    bumped by the caller to hand worker w a job; the worker sleeps on it
 *   ctrl[slot(w) + FN]     index into `fns` (the export to call)
 *   ctrl[slot(w) + ARGC]   argument count, followed by up to MAX_ARGS i32 arguments
 *
 * The caller does its own share on the calling thread, then spins briefly and Atomics.waits for
 * PENDING to drop to 0 (Node allows Atomics.wait on the main thread). Workers spin briefly after a
 * job (cheap back-to-back dispatch in decode loops) and then sleep in Atomics.wait.
 */
import { Worker } from 'node:worker_threads';
import { EdgeqError } from '../core/errors.js';
import type { WasmMemory, WasmModule } from './wasm-api.js';

const PENDING = 0;
const FAILED = 1;
const QUIT = 2;
const HEADER = 16;
const SLOT = 16;
const SEQ = 0;
const FN = 1;
const ARGC = 2;
const ARGS = 3;
export const MAX_ARGS = SLOT - ARGS;

/**
 * How long a worker keeps polling for the next job before it sleeps in Atomics.wait. Waking a
 * sleeping thread costs ~50-150 µs on a VM (futex + IPI to a halted vCPU), more than a whole decode
 * GEMV, so workers stay awake across the short gaps between the matmuls of one forward pass.
 */
export const DEFAULT_WORKER_SPIN_US = 1000;
/** How long the caller polls for the workers to finish before it sleeps. */
const CALLER_SPIN_US = 100;

// Source evaluated in each worker (new Worker(src, { eval: true })): no file path to resolve. Workers
// inherit the parent's execArgv, so this is evaluated as CommonJS or, under --input-type=module, as
// ESM: it uses neither require nor static import, only dynamic import(), valid in both.
const WORKER_SOURCE = `
import('node:worker_threads').then((wt) => {
'use strict';
const { workerData, parentPort } = wt;
const { module, memory, ctrlBuffer, index, fns, spinMs } = workerData;
const ctrl = new Int32Array(ctrlBuffer);
const instance = new WebAssembly.Instance(module, {
  env: { memory, abort() { throw new Error('wasm abort'); } },
});
const table = fns.map((name) => instance.exports[name]);
const base = ${HEADER} + index * ${SLOT};
let seq = Atomics.load(ctrl, base + ${SEQ});
parentPort.postMessage('ready');
for (;;) {
  // bounded spin: poll, reading the clock every 256 polls, until spinMs has passed
  const until = performance.now() + spinMs;
  for (let i = 1; Atomics.load(ctrl, base + ${SEQ}) === seq; i++) {
    if ((i & 255) === 0 && performance.now() > until) break;
  }
  while (Atomics.load(ctrl, base + ${SEQ}) === seq) Atomics.wait(ctrl, base + ${SEQ}, seq);
  seq = Atomics.load(ctrl, base + ${SEQ});
  if (Atomics.load(ctrl, ${QUIT}) !== 0) break;
  try {
    const argc = ctrl[base + ${ARGC}];
    const a = ctrl.subarray(base + ${ARGS}, base + ${ARGS} + argc);
    table[ctrl[base + ${FN}]](...a);
  } catch (err) {
    Atomics.add(ctrl, ${FAILED}, 1);
    try { parentPort.postMessage({ error: String(err && err.stack || err) }); } catch {}
  }
  if (Atomics.sub(ctrl, ${PENDING}, 1) === 1) Atomics.notify(ctrl, ${PENDING});
}
});
`;

/** One unit of work: call wasm export `fns[fn]` with i32 arguments. */
export interface Job {
  fn: number;
  args: number[];
}

export class ThreadPool {
  private readonly ctrl: Int32Array;
  private readonly seqs: number[];
  private disposed = false;
  private lastError: string | undefined;

  private constructor(
    private readonly workers: Worker[],
    ctrlBuffer: SharedArrayBuffer,
  ) {
    this.ctrl = new Int32Array(ctrlBuffer);
    this.seqs = workers.map(() => 0);
    for (const w of workers) {
      w.on('message', (m: unknown) => {
        if (m && typeof m === 'object' && 'error' in m) this.lastError = String((m as { error: unknown }).error);
      });
    }
  }

  /** Starts `count` workers, each with its own instance of `module` over `memory`. */
  static async create(
    module: WasmModule,
    memory: WasmMemory,
    count: number,
    fns: readonly string[],
    spinMicros = DEFAULT_WORKER_SPIN_US,
  ): Promise<ThreadPool> {
    const ctrlBuffer = new SharedArrayBuffer((HEADER + SLOT * Math.max(count, 1)) * 4);
    const workers: Worker[] = [];
    const ready: Promise<void>[] = [];
    for (let index = 0; index < count; index++) {
      const w = new Worker(WORKER_SOURCE, {
        eval: true,
        workerData: { module, memory, ctrlBuffer, index, fns: [...fns], spinMs: Math.max(0, spinMicros) / 1000 },
      });
      workers.push(w);
      ready.push(
        new Promise<void>((resolve, reject) => {
          const onError = (err: Error): void => reject(err);
          w.once('error', onError);
          w.once('message', () => {
            w.off('error', onError);
            resolve();
          });
        }),
      );
    }
    try {
      await Promise.all(ready);
    } catch (err) {
      await Promise.all(workers.map((w) => w.terminate()));
      throw new EdgeqError('E_WASM_THREADS', `cannot start kernel worker threads: ${String(err)}`);
    }
    const pool = new ThreadPool(workers, ctrlBuffer);
    // after the constructor's 'message' listeners: adding one re-refs the worker's port
    for (const w of workers) w.unref();
    return pool;
  }

  get size(): number {
    return this.workers.length;
  }

  /**
   * Runs jobs[0] on the calling thread and jobs[1..] on workers 0.., returning when all are done.
   * `local` executes a job on the calling thread.
   */
  run(jobs: readonly Job[], local: (job: Job) => void): void {
    if (this.disposed) throw new EdgeqError('E_DISPOSED', 'the thread pool was disposed');
    const remote = jobs.length - 1;
    if (remote > this.workers.length) throw new Error(`ThreadPool.run: ${jobs.length} jobs for ${this.workers.length} workers + caller`);
    for (const job of jobs) {
      if (job.args.length > MAX_ARGS) throw new Error(`ThreadPool.run: too many arguments (${job.args.length})`);
    }
    const ctrl = this.ctrl;
    if (remote > 0) {
      Atomics.store(ctrl, FAILED, 0);
      Atomics.store(ctrl, PENDING, remote);
      for (let w = 0; w < remote; w++) {
        const job = jobs[w + 1]!;
        const base = HEADER + w * SLOT;
        ctrl[base + FN] = job.fn;
        ctrl[base + ARGC] = job.args.length;
        for (let i = 0; i < job.args.length; i++) ctrl[base + ARGS + i] = job.args[i]!;
        this.seqs[w] = (this.seqs[w]! + 1) | 0;
        Atomics.store(ctrl, base + SEQ, this.seqs[w]!); // seq-cst: publishes the plain writes above
        Atomics.notify(ctrl, base + SEQ, 1);
      }
    }
    let localError: unknown;
    try {
      if (jobs.length > 0) local(jobs[0]!);
    } catch (err) {
      localError = err;
    }
    if (remote > 0) this.join();
    if (localError !== undefined) throw localError;
    if (remote > 0 && Atomics.load(ctrl, FAILED) !== 0) {
      throw new EdgeqError('E_WASM_KERNEL', `a wasm kernel failed on a worker thread${this.lastError ? `: ${this.lastError}` : ''}`);
    }
  }

  private join(): void {
    const ctrl = this.ctrl;
    const until = performance.now() + CALLER_SPIN_US / 1000;
    for (let i = 1; Atomics.load(ctrl, PENDING) !== 0; i++) {
      if ((i & 255) === 0 && performance.now() > until) break;
    }
    for (;;) {
      const v = Atomics.load(ctrl, PENDING);
      if (v === 0) return;
      Atomics.wait(ctrl, PENDING, v);
    }
  }

  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    Atomics.store(this.ctrl, QUIT, 1);
    for (let w = 0; w < this.workers.length; w++) {
      const base = HEADER + w * SLOT;
      Atomics.add(this.ctrl, base + SEQ, 1);
      Atomics.notify(this.ctrl, base + SEQ);
    }
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}
