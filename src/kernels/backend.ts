/**
 * The matmul interface the forward pass uses. Two implementations: `scalar` (plain TypeScript, the
 * oracle, see scalar-backend.ts) and `wasm` (WebAssembly SIMD, multithreaded, see wasm-backend.ts).
 */
import { EdgeqError } from '../core/errors.js';
import type { QuantizedWeight } from '../qtypes/types.js';

/** A weight matrix W in PyTorch layout (n rows = out features, k cols = in features), prepared once. */
export interface WeightHandle {
  readonly n: number;
  readonly k: number;
}

/** A quantized weight packed for one of the low-bit kernels (see lowbit-plan.ts). */
export interface QuantWeightHandle extends WeightHandle {
  readonly kernel: 'lut' | 'int8';
  /** Bytes of the packed weight as executed (codes/bit planes + per-block scales and zero terms). */
  readonly bytes: number;
}

export interface PrepareQuantizedOptions {
  /** Default: 'lut' for 2/3/4-bit weights, 'int8' for 8-bit. */
  kernel?: 'lut' | 'int8';
}

/**
 * A weight (n, k) uploaded a band of rows at a time (beginWeight), so no full fp32 copy of it has to exist
 * outside the backend: bands in row order, each starting at a multiple of rowAlign (the last may be short).
 * The result is the same handle prepareWeight(w, n, k) gives for the whole matrix.
 */
export interface WeightWriter {
  readonly n: number;
  readonly k: number;
  /** Every band but the last holds a multiple of this many rows. */
  readonly rowAlign: number;
  /** Rows written so far (the next band starts here). */
  readonly rowsWritten: number;
  /** Writes rows [rowsWritten, rowsWritten + rows) from band (rows·k values, row-major). */
  write(band: Float32Array, rows: number): void;
  /** The prepared weight, once all n rows are written. */
  finish(): WeightHandle;
  /** Gives the space back (a weight that will not be finished); idempotent. */
  abort(): void;
}

/** A KV cache's K and V per layer, each (kvHeads, capacity, headDim), stored where the backend's attention reads them. */
export interface KvStorage {
  readonly k: Float32Array[];
  readonly v: Float32Array[];
  /** Gives the storage back (the views must not be used afterwards); idempotent. */
  free(): void;
}

/** One causal grouped-query attention call: out (T, nHeads, headDim) from q (T, nHeads, headDim) and positions [0, pos0 + T) of k, v. */
export interface AttentionArgs {
  q: Float32Array;
  T: number;
  pos0: number;
  /** One layer's keys and values, (kvHeads, capacity, headDim). */
  k: Float32Array;
  v: Float32Array;
  capacity: number;
  kvHeads: number;
  headDim: number;
  nHeads: number;
  out: Float32Array;
}

export interface MatmulBackend {
  readonly name: string; // 'scalar' | 'wasm'
  readonly threads: number;
  /** Upload/pack W (row-major [n, k]) once, in whatever layout the kernel wants. */
  prepareWeight(w: Float32Array, n: number, k: number): WeightHandle;
  /** The same, band by band (see WeightWriter); optional: without it callers use prepareWeight. */
  beginWeight?(n: number, k: number): WeightWriter;
  /**
   * Lends a prepared weight's own storage as a row-major (n, k) fp32 array (contents unspecified), e.g. to
   * read and solve the weight's next values in memory the backend already holds; the handle cannot be used
   * until repackWeight. Optional (with repackWeight).
   */
  unpackWeight?(h: WeightHandle): Float32Array;
  /** Packs w (n, k) row-major — which may be the array unpackWeight lent — into h's storage; h is usable again. */
  repackWeight?(h: WeightHandle, w: Float32Array): void;
  /** Y[m, n] = X[m, k] · Wᵀ   (x row-major [m,k]); returns out (allocated if not given). */
  matmul(x: Float32Array, m: number, w: WeightHandle, out?: Float32Array): Float32Array;
  /**
   * Y[m, rows] = X[m, k] · W[0:rows]ᵀ: the product with the first `rows` rows of a prepared W only, each value
   * computed exactly as matmul computes it (optional: without it, take matmul's first columns).
   */
  matmulPrefix?(x: Float32Array, m: number, w: WeightHandle, rows: number, out?: Float32Array): Float32Array;
  /** Y[m, n] = A[m, k] · B[n, k]ᵀ for transient operands (attention scores, P·V with V pre-transposed). */
  matmulTransient(a: Float32Array, m: number, b: Float32Array, n: number, k: number, out?: Float32Array): Float32Array;
  /** Packs a quantized weight (n, k) once for the low-bit kernels; freed by freeWeight. */
  prepareQuantized(q: QuantizedWeight, opts?: PrepareQuantizedOptions): QuantWeightHandle;
  /** Y[m, n] = X[m, k] · Ŵᵀ with Ŵ the dequantized weight, computed by the handle's kernel. */
  matmulQuantized(x: Float32Array, m: number, h: QuantWeightHandle, out?: Float32Array): Float32Array;
  freeWeight(w: WeightHandle): void;
  /** Optional: gate[i] = silu(gate[i]) · up[i] (the reference is siluMulInPlace in src/infer/ops.ts). */
  siluMul?(gate: Float32Array, up: Float32Array): void;
  /** Optional: KV storage inside the backend's memory, which `attention` then reads in place. */
  allocKv?(numLayers: number, kvHeads: number, capacity: number, headDim: number): KvStorage;
  /** Optional: causal attention when args.k/v come from this backend's allocKv; returns false (nothing done) otherwise. */
  attention?(args: AttentionArgs): boolean;
  /**
   * Optional: makes room, before the weights are prepared (prepare* is synchronous), for about `bytes` of
   * packed weights — e.g. the wasm backend creates more WebAssembly memories (shards, see sharded-backend.ts).
   * `tensors`: each weight's bytes in the order they will be prepared, to plan their placement exactly.
   * Over-estimates are fine.
   */
  reserve?(bytes: number, tensors?: readonly number[]): Promise<void>;
  dispose(): Promise<void> | void;
}

function checkDim(what: string, v: number): void {
  if (!Number.isInteger(v) || v < 0) {
    throw new EdgeqError('E_MATMUL_SHAPE', `${what} must be a non-negative integer, got ${v}`);
  }
}

/** Validates the sizes of one product Y[m, n] = A[m, k] · B[n, k]ᵀ; shared by all backends. */
export function checkMatmulArgs(
  a: Float32Array,
  m: number,
  n: number,
  k: number,
  out: Float32Array | undefined,
  b?: Float32Array,
): void {
  checkDim('m', m);
  checkDim('n', n);
  checkDim('k', k);
  if (a.length < m * k) {
    throw new EdgeqError('E_MATMUL_SHAPE', `input has ${a.length} values, expected at least m*k = ${m}*${k} = ${m * k}`);
  }
  if (b && b.length < n * k) {
    throw new EdgeqError('E_MATMUL_SHAPE', `B has ${b.length} values, expected at least n*k = ${n}*${k} = ${n * k}`);
  }
  if (out && out.length < m * n) {
    throw new EdgeqError('E_MATMUL_SHAPE', `output has ${out.length} values, expected at least m*n = ${m}*${n} = ${m * n}`);
  }
}

/** Checks one band for WeightWriter.write (order, alignment, size) and returns nothing or throws. */
export function checkWeightBand(wr: Pick<WeightWriter, 'n' | 'k' | 'rowAlign' | 'rowsWritten'>, band: Float32Array, rows: number): void {
  checkDim('rows', rows);
  if (wr.rowsWritten + rows > wr.n) {
    throw new EdgeqError('E_MATMUL_SHAPE', `band of ${rows} rows at row ${wr.rowsWritten} runs past the weight's ${wr.n} rows`);
  }
  if (wr.rowsWritten + rows < wr.n && rows % wr.rowAlign !== 0) {
    throw new EdgeqError('E_MATMUL_SHAPE', `a band before the last must hold a multiple of ${wr.rowAlign} rows, got ${rows}`);
  }
  if (band.length < rows * wr.k) {
    throw new EdgeqError('E_MATMUL_SHAPE', `band has ${band.length} values, expected at least rows*k = ${rows}*${wr.k} = ${rows * wr.k}`);
  }
}

/** Validates a weight's shape (n, k) before beginWeight. */
export function checkWeightShape(n: number, k: number): void {
  checkDim('n', n);
  checkDim('k', k);
}

/** Validates a weight matrix before prepareWeight. */
export function checkWeightArgs(w: Float32Array, n: number, k: number): void {
  checkDim('n', n);
  checkDim('k', k);
  if (w.length < n * k) {
    throw new EdgeqError('E_MATMUL_SHAPE', `weight has ${w.length} values, expected at least n*k = ${n}*${k} = ${n * k}`);
  }
}
