/**
 * This machine's DRAM read bandwidth, measured (never looked up): each of `threads` workers streams its
 * own buffer (far larger than any cache) through the wasm `readSum` kernel (128-bit loads, four
 * accumulators), all starting together at a shared barrier; bandwidth = total bytes read ÷ the slowest
 * worker's time, best of `trials`. This is the denominator of every roofline edgeq prints for the host.
 */
import { Worker } from 'node:worker_threads';
import os from 'node:os';
import { EdgeqError } from '../core/errors.js';
import { loadKernelModule } from '../kernels/wasm-backend.js';

export interface BandwidthOptions {
  threads?: number;
  /** Bytes per worker buffer (default 256 MiB). */
  bytesPerThread?: number;
  /** Passes over the buffer per timed trial (default 2). */
  passes?: number;
  /** Timed trials; the best is reported (default 3). */
  trials?: number;
}

export interface BandwidthResult {
  threads: number;
  bytesPerThread: number;
  /** Read bandwidth, bytes per second (best trial). */
  bytesPerSec: number;
  trialsBytesPerSec: number[];
}

const WORKER_SOURCE = `
import('node:worker_threads').then((wt) => {
  const { module, bytes, passes, trials, ctrlBuffer, index } = wt.workerData;
  const pages = Math.ceil((bytes + (1 << 20)) / 65536);
  const memory = new WebAssembly.Memory({ initial: pages, maximum: pages, shared: true });
  const inst = new WebAssembly.Instance(module, { env: { memory, abort() { throw new Error('wasm abort'); } } });
  const base = (inst.exports.heapBase() + 63) & ~63;
  new Float32Array(memory.buffer, base, bytes / 4).fill(0.5);
  const ctrl = new Int32Array(ctrlBuffer);
  const times = [];
  let sink = 0;
  for (let t = 0; t < trials; t++) {
    // barrier: everyone arrives, the last one releases the trial
    if (Atomics.add(ctrl, 0, 1) === ctrl[1] * (t + 1) - 1) { Atomics.add(ctrl, 2, 1); Atomics.notify(ctrl, 2); }
    while (Atomics.load(ctrl, 2) <= t) Atomics.wait(ctrl, 2, t, 50);
    const t0 = performance.now();
    sink += inst.exports.readSum(base, bytes, passes);
    times.push((performance.now() - t0) / 1000);
  }
  wt.parentPort.postMessage({ times, sink });
});
`;

export async function measureReadBandwidth(opts: BandwidthOptions = {}): Promise<BandwidthResult> {
  const threads = opts.threads ?? os.availableParallelism();
  const bytes = opts.bytesPerThread ?? 256 * 2 ** 20;
  const passes = opts.passes ?? 2;
  const trials = opts.trials ?? 3;
  if (!Number.isInteger(threads) || threads < 1) throw new EdgeqError('E_THREADS', `threads must be a positive integer (got ${threads})`);
  if (bytes % 64 !== 0 || bytes < 1 << 20) throw new EdgeqError('E_BANDWIDTH_ARGS', `bytesPerThread must be a multiple of 64 and ≥ 1 MiB (got ${bytes})`);
  const module = await loadKernelModule();
  const ctrlBuffer = new SharedArrayBuffer(16);
  const ctrl = new Int32Array(ctrlBuffer);
  ctrl[1] = threads;
  const results = await Promise.all(
    Array.from(
      { length: threads },
      (_, index) =>
        new Promise<number[]>((resolve, reject) => {
          const w = new Worker(WORKER_SOURCE, { eval: true, workerData: { module, bytes, passes, trials, ctrlBuffer, index } });
          w.once('message', (m: { times: number[] }) => {
            resolve(m.times);
            void w.terminate();
          });
          w.once('error', reject);
        }),
    ),
  );
  const trialsBytesPerSec: number[] = [];
  for (let t = 0; t < trials; t++) {
    const slowest = Math.max(...results.map((r) => r[t]));
    trialsBytesPerSec.push((threads * bytes * passes) / slowest);
  }
  return { threads, bytesPerThread: bytes, bytesPerSec: Math.max(...trialsBytesPerSec), trialsBytesPerSec };
}
