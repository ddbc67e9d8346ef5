/**
 * One decoder block's weights as plain fp32 arrays (what the quantizers read and rewrite), and the
 * conversion into runnable Linears on a backend. The pipeline holds exactly one of these at a time.
 */
import type { LlamaConfig } from '../arch/llama-config.js';
import { LLAMA_LINEARS, linearBiasName, linearWeightName, normName, type LinearRole } from '../arch/llama-tensors.js';
import type { TensorReader } from '../formats/safetensors/types.js';
import type { BlockLinears, BlockWeights } from '../infer/llama-block.js';
import { DenseLinear, type Linear } from '../infer/linear.js';
import { addBiasRows } from '../infer/ops.js';
import type { MatmulBackend, WeightHandle } from '../kernels/backend.js';

export interface LinearF32 {
  w: Float32Array; // (n, k)
  n: number;
  k: number;
  bias: Float32Array | null; // (n,)
}

export interface BlockF32 {
  layer: number;
  inputNorm: Float32Array; // (d,)
  postNorm: Float32Array; // (d,)
  linears: Record<LinearRole, LinearF32>;
}

/** An empty weight: the linear's fp32 values are not held (readBlockF32 with `weights: false`). */
const NOT_LOADED = new Float32Array(0);

/**
 * Reads one block. With `weights: false` the linears' w stay empty (norms, biases and shapes only): the
 * streaming pipeline reads each weight when it needs it (linearWeightF32) and keeps the runnable copy on
 * the backend (PackedBlock), so the block is never held twice.
 */
export async function readBlockF32(reader: TensorReader, c: LlamaConfig, layer: number, opts: { weights?: boolean } = {}): Promise<BlockF32> {
  const linears = {} as Record<LinearRole, LinearF32>;
  for (const spec of LLAMA_LINEARS) {
    const [n, k] = spec.shape(c);
    linears[spec.role] = {
      w: opts.weights === false ? NOT_LOADED : await reader.readF32(linearWeightName(layer, spec), { checkFinite: true }),
      n,
      k,
      bias: spec.hasBias(c) ? await reader.readF32(linearBiasName(layer, spec), { checkFinite: true }) : null,
    };
  }
  return {
    layer,
    inputNorm: await reader.readF32(normName(layer, 'input_layernorm'), { checkFinite: true }),
    postNorm: await reader.readF32(normName(layer, 'post_attention_layernorm'), { checkFinite: true }),
    linears,
  };
}

export function denseLinear(backend: MatmulBackend, l: LinearF32): DenseLinear {
  return new DenseLinear(backend, l.w, l.n, l.k, l.bias);
}

/** Runnable weights for a block (copies into the backend); call freeBlockWeights when done. */
export function toBlockWeights(backend: MatmulBackend, b: BlockF32): BlockWeights {
  const linears = {} as BlockLinears;
  for (const spec of LLAMA_LINEARS) linears[spec.role] = denseLinear(backend, b.linears[spec.role]);
  return { inputNorm: b.inputNorm, postNorm: b.postNorm, linears };
}

export function freeBlockWeights(w: BlockWeights): void {
  for (const l of Object.values(w.linears)) l.free();
}

/** The PackedBlock made from a BlockF32, if any (linearWeightF32 reads into its storage). */
const packedOf = new WeakMap<BlockF32, PackedBlock>();

/**
 * The fp32 weight of `role` for its solve: the block's own (e.g. AWQ-scaled) copy, or read from the checkpoint
 * when not held — into the storage of the block's packed copy when a PackedBlock of `b` exists (see
 * PackedBlock.readForSolve: the original is not run again before replace(role), and the block then holds one
 * copy of this weight, not two).
 */
export async function linearWeightF32(reader: TensorReader, b: BlockF32, role: LinearRole): Promise<Float32Array> {
  const lin = b.linears[role];
  if (lin.w.length > 0 || lin.n * lin.k === 0) return lin.w;
  const name = linearWeightName(b.layer, LLAMA_LINEARS.find((s) => s.role === role)!);
  const packed = packedOf.get(b);
  if (packed) return packed.readForSolve(reader, role, name);
  return reader.readF32(name, { checkFinite: true });
}

/** About this many bytes of fp32 rows per checkpoint read when a weight is packed straight from it. */
export const PACK_BAND_BYTES = 4 << 20;

/**
 * Weight `name` (n, k) prepared on the backend from `reader` by bands of rows (≈ bandBytes of fp32 each,
 * NaN/Inf refused), so no full fp32 copy of it exists in JS; the handle is the one prepareWeight would give
 * for the whole matrix. Falls back to one whole read where the backend or the reader cannot do bands.
 */
export async function prepareWeightFromReader(backend: MatmulBackend, reader: TensorReader, name: string, n: number, k: number, bandBytes = PACK_BAND_BYTES): Promise<WeightHandle> {
  if (!backend.beginWeight || !reader.readF32Range || n * k === 0) return backend.prepareWeight(await reader.readF32(name, { checkFinite: true }), n, k);
  const wr = backend.beginWeight(n, k);
  try {
    const align = wr.rowAlign;
    const rows = Math.max(align, Math.floor(bandBytes / 4 / Math.max(1, k) / align) * align);
    for (let r0 = 0; r0 < n; r0 += rows) {
      const count = Math.min(rows, n - r0);
      wr.write(await reader.readF32Range(name, r0 * k, count * k, { checkFinite: true }), count);
    }
    return wr.finish();
  } catch (err) {
    wr.abort();
    throw err;
  }
}

/** A Linear over a prepared backend weight: what DenseLinear computes (X·Wᵀ on the backend, then the bias). */
export class HandleLinear implements Linear {
  private handle: WeightHandle | null;
  constructor(
    private readonly backend: MatmulBackend,
    handle: WeightHandle,
    private readonly bias: Float32Array | null,
  ) {
    this.handle = handle;
    this.outFeatures = handle.n;
    this.inFeatures = handle.k;
  }

  readonly outFeatures: number;
  readonly inFeatures: number;

  get weightBytes(): number {
    return this.outFeatures * this.inFeatures * 4;
  }

  /** Set while the weight's storage is lent out for its solve (PackedBlock.readForSolve): it cannot run. */
  lent = false;

  /** The backend weight (null once freed). */
  get weight(): WeightHandle | null {
    return this.handle;
  }

  forward(x: Float32Array, m: number, out?: Float32Array): Float32Array {
    if (!this.handle) throw new Error('this linear was freed');
    if (this.lent) throw new Error('this linear is being solved: its packed weight was given up for the solve (PackedBlock.replace it first)');
    const y = this.backend.matmul(x, m, this.handle, out);
    if (this.bias) addBiasRows(y, this.bias, m, this.outFeatures);
    return y;
  }

  free(): void {
    if (this.handle) this.backend.freeWeight(this.handle);
    this.handle = null;
  }
}

/**
 * A block's runnable weights packed on the backend once, for every pass over the block (statistics,
 * propagation); a linear is swapped for its quantized values as soon as it is solved (replace). Weights the
 * block does not hold are packed from the checkpoint by bands of rows (prepareWeightFromReader): the
 * backend's packed copy is the only full one.
 */
export class PackedBlock {
  readonly weights: BlockWeights;
  private constructor(
    private readonly backend: MatmulBackend,
    private readonly b: BlockF32,
    linears: BlockLinears,
  ) {
    this.weights = { inputNorm: b.inputNorm, postNorm: b.postNorm, linears };
  }

  /** Packs every linear, the ones the block does not hold straight from `reader`, one at a time. */
  static async create(backend: MatmulBackend, reader: TensorReader, b: BlockF32): Promise<PackedBlock> {
    const linears = {} as BlockLinears;
    try {
      for (const spec of LLAMA_LINEARS) {
        const l = b.linears[spec.role];
        const handle =
          l.w.length > 0 || l.n * l.k === 0 ? backend.prepareWeight(l.w, l.n, l.k) : await prepareWeightFromReader(backend, reader, linearWeightName(b.layer, spec), l.n, l.k);
        linears[spec.role] = new HandleLinear(backend, handle, l.bias);
      }
    } catch (err) {
      for (const l of Object.values(linears)) l.free();
      throw err;
    }
    const packed = new PackedBlock(backend, b, linears);
    packedOf.set(b, packed);
    return packed;
  }

  /**
   * Weight `name` of `role` read from `reader` (by bands, NaN/Inf refused) into the storage of its packed copy,
   * lent as a plain (n, k) array (MatmulBackend.unpackWeight): the solver may work in it and replace(role, it)
   * packs it back where it is. Until then `role` cannot run (it throws). Without the backend's support: a
   * plain read.
   */
  async readForSolve(reader: TensorReader, role: LinearRole, name: string): Promise<Float32Array> {
    const lin = this.weights.linears[role];
    const h = lin instanceof HandleLinear ? lin.weight : null;
    if (!h || !this.backend.unpackWeight || !this.backend.repackWeight || !reader.readF32Range) return reader.readF32(name, { checkFinite: true });
    const { n, k } = this.b.linears[role];
    (lin as HandleLinear).lent = true;
    const view = this.backend.unpackWeight(h);
    const rows = Math.max(1, Math.floor(PACK_BAND_BYTES / 4 / Math.max(1, k)));
    for (let r0 = 0; r0 < n; r0 += rows) {
      const count = Math.min(rows, n - r0);
      view.set(await reader.readF32Range(name, r0 * k, count * k, { checkFinite: true }), r0 * k);
    }
    return view;
  }

  /** The runnable `role` now computes with w (n, k): packed into the old copy's storage (w may be the array readForSolve lent). */
  replace(role: LinearRole, w: Float32Array): void {
    const l = this.b.linears[role];
    const lin = this.weights.linears[role];
    const h = lin instanceof HandleLinear ? lin.weight : null;
    if (h && this.backend.repackWeight) {
      this.backend.repackWeight(h, w);
      (lin as HandleLinear).lent = false;
      return;
    }
    lin.free();
    this.weights.linears[role] = new HandleLinear(this.backend, this.backend.prepareWeight(w, l.n, l.k), l.bias);
  }

  free(): void {
    packedOf.delete(this.b);
    freeBlockWeights(this.weights);
  }
}
