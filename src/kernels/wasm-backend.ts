/**
 * The WebAssembly SIMD matmul backend: build/kernels.wasm (src/kernels/assembly) over one shared
 * memory, multithreaded with worker_threads (thread-pool.ts). The API is synchronous.
 *
 * Weights are repacked once into NR-wide panels (see assembly/gemm.ts). Per call: X is copied in
 * and repacked into MR-row blocks (rows split over the threads), then Y is cut into 2-D tiles
 * (row blocks × panels, so both the M and the N extent are split — whichever is larger gets more
 * cuts) that the calling thread and the workers claim dynamically from a shared atomic counter, so
 * a thread slowed by other load just does fewer tiles; finally Y is copied out. m = 1 (decode) runs
 * a GEMV over chunks of panels the same way; problems under PARALLEL_MIN_MACS stay on one thread.
 * This file is the Node.js side (reading the .wasm, worker_threads); the class is wasm-backend-core.ts.
 * createWasmBackend returns a ShardedBackend (sharded-backend.ts): one or more such backends, each over
 * its own memory, so that a model's weights are not bound by one wasm32 memory's 4 GiB.
 */
import { readFile } from 'node:fs/promises';
import os from 'node:os';
import { EdgeqError, MissingFileError } from '../core/errors.js';
import { ThreadPool } from './thread-pool.js';
import { wasm, type WasmModule } from './wasm-api.js';
import { ShardedBackend } from './sharded-backend.js';
import { createWasmBackendFromModule, POOL_FNS, type WasmBackend } from './wasm-backend-core.js';

export { PARALLEL_MIN_MACS } from './wasm-backend-core.js';
export { ShardedBackend } from './sharded-backend.js';


/** Where the compiled kernels live (from src/kernels/*.ts and from dist/kernels/*.js alike). */
export const KERNELS_WASM_URL = new URL('../../build/kernels.wasm', import.meta.url);

let modulePromise: Promise<WasmModule> | undefined;

async function compileKernels(url: URL): Promise<WasmModule> {
  let bytes: Buffer;
  try {
    bytes = await readFile(url);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new MissingFileError(
      'E_WASM_MISSING',
      `cannot read the compiled wasm kernels ${url.pathname} (${code ?? String(err)})`,
      'run `npm install` or `npm run build:wasm` to compile them',
    );
  }
  try {
    return await wasm.compile(bytes);
  } catch (err) {
    throw new EdgeqError(
      'E_WASM_COMPILE',
      `cannot compile ${url.pathname}: ${String(err)}`,
      'this needs WebAssembly SIMD and threads (Node >= 20); rebuild with `npm run build:wasm`',
    );
  }
}

/** Compiles build/kernels.wasm (once per process; another `url` is compiled uncached). */
export function loadKernelModule(url: URL = KERNELS_WASM_URL): Promise<WasmModule> {
  if (url.href !== KERNELS_WASM_URL.href) return compileKernels(url);
  if (!modulePromise) {
    modulePromise = compileKernels(url);
    modulePromise.catch(() => (modulePromise = undefined));
  }
  return modulePromise;
}

export interface WasmBackendOptions {
  /** Threads including the calling one; default os.availableParallelism(). */
  threads?: number;
  /**
   * How long (µs) idle workers poll for the next job before sleeping; default 1000 with one shard,
   * MULTI_SHARD_SPIN_US with several (see sharded-backend.ts). Higher keeps back-to-back matmuls cheap,
   * 0 makes workers sleep right after each job.
   */
  spinMicros?: number;
  /**
   * Memory limit of each shard (one WebAssembly memory each), bytes, rounded down to 64 KiB pages; default
   * and maximum 4 GiB (the wasm32 limit). Smaller values spread a model over more shards (tests).
   */
  maxMemoryBytes?: number;
  /** Weight bytes per shard before the next is used; default maxMemoryBytes·(1 − SHARD_HEADROOM). */
  shardWeightBytes?: number;
}

/** Worker spin (µs) when the backend has more than one shard (see sharded-backend.ts). */
export const MULTI_SHARD_SPIN_US = 100;

const MAX_MEMORY_BYTES = 65536 * 65536;

export async function createWasmBackend(opts: WasmBackendOptions = {}): Promise<ShardedBackend> {
  const threads = opts.threads ?? os.availableParallelism();
  if (!Number.isInteger(threads) || threads < 1 || threads > 256) {
    throw new EdgeqError('E_USAGE', `threads must be an integer in 1..256, got ${threads}`);
  }
  const maxMemoryBytes = Math.floor((opts.maxMemoryBytes ?? MAX_MEMORY_BYTES) / 65536) * 65536;
  if (!(maxMemoryBytes >= 65536 && maxMemoryBytes <= MAX_MEMORY_BYTES)) {
    throw new EdgeqError('E_USAGE', `maxMemoryBytes must be in 64 KiB..4 GiB, got ${opts.maxMemoryBytes}`);
  }
  if (opts.shardWeightBytes !== undefined && !(opts.shardWeightBytes > 0)) {
    throw new EdgeqError('E_USAGE', `shardWeightBytes must be positive, got ${opts.shardWeightBytes}`);
  }
  const module = await loadKernelModule();
  const createShard = (multi: boolean): Promise<WasmBackend> => {
    const spin = opts.spinMicros ?? (multi ? MULTI_SHARD_SPIN_US : undefined);
    return createWasmBackendFromModule(module, threads, (memory) => ThreadPool.create(module, memory, threads - 1, POOL_FNS, spin), maxMemoryBytes);
  };
  return new ShardedBackend(await createShard(false), {
    maxMemoryBytes,
    shardWeightBytes: opts.shardWeightBytes,
    createShard,
    respinFirst: opts.spinMicros === undefined && threads > 1,
  });
}
