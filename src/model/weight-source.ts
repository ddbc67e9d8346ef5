/**
 * Where a model's weights come from, as the loader sees them: a plain Hugging Face checkpoint (dense
 * tensors), or an edgeq checkpoint whose linears are quantized, dense (fp16) or low-rank. `readF32` returns a
 * logical HF tensor as fp32 — dequantized for quantized linears, the product Û·V̂ of the (dequantized) factors
 * for low-rank ones (the "dequantized fp32 reference" every low-bit and low-rank path is checked against).
 */
import { EdgeqCheckpoint, isEdgeqCheckpoint, type LowRankWeight } from '../formats/edgeq/reader.js';
import type { SafetensorsCheckpoint } from '../formats/safetensors/checkpoint.js';
import { lowRankFactorPrefix } from '../formats/edgeq/lowrank-meta.js';
import { dequantize } from '../qtypes/registry.js';
import { lowRankProduct } from './lowrank-product.js';
import type { QuantizedWeight } from '../qtypes/types.js';

export interface TensorShapeInfo {
  shape: number[];
  /** Storage dtype, or the quant type id for quantized linears. */
  dtype: string;
  /** Stored bytes of this logical tensor (all parts for quantized linears, both factors for low-rank ones). */
  bytes: number;
  /** Low-rank linears (dtype 'lowrank'): rank and factor storage ('F16' or a quant type id). */
  lowRank?: { rank: number; u: string; v: string };
}

export interface WeightSource {
  readonly kind: 'hf' | 'edgeq';
  readonly metadata: Readonly<Record<string, string>>;
  /** Logical tensor names (HF names) → shape/dtype/bytes. */
  readonly tensors: ReadonlyMap<string, TensorShapeInfo>;
  readF32(name: string): Promise<Float32Array>;
  /** The quantized form of a linear, or null when it is stored dense (or low-rank). */
  readQuantized(name: string): Promise<QuantizedWeight | null>;
  /** The low-rank factors of a linear, or null when it is not stored low-rank. */
  readLowRank(name: string): Promise<LowRankWeight | null>;
  close(): Promise<void>;
}

class HfSource implements WeightSource {
  readonly kind = 'hf';
  readonly tensors: Map<string, TensorShapeInfo>;
  constructor(
    private readonly ckpt: SafetensorsCheckpoint,
    private readonly checkFinite: boolean,
  ) {
    this.tensors = new Map([...ckpt.tensors.values()].map((t) => [t.name, { shape: [...t.shape], dtype: t.dtype, bytes: t.byteLength }]));
  }
  get metadata() {
    return this.ckpt.metadata;
  }
  readF32(name: string): Promise<Float32Array> {
    return this.ckpt.readF32(name, { checkFinite: this.checkFinite });
  }
  async readQuantized(): Promise<null> {
    return null;
  }
  async readLowRank(): Promise<null> {
    return null;
  }
  close(): Promise<void> {
    return this.ckpt.close();
  }
}

/** An opened edgeq checkpoint as a WeightSource (also usable in a browser, see EdgeqCheckpoint.fromFile). */
export class EdgeqSource implements WeightSource {
  readonly kind = 'edgeq';
  readonly tensors = new Map<string, TensorShapeInfo>();
  constructor(private readonly ckpt: EdgeqCheckpoint) {
    const stored = ckpt.file.tensors;
    for (const [name, q] of ckpt.qtypes) {
      const prefix = name.slice(0, -'.weight'.length);
      let bytes = 0;
      for (const part of ['qweight', 'scales', 'qzeros', 'g_idx']) bytes += stored.get(`${prefix}.${part}`)?.byteLength ?? 0;
      this.tensors.set(name, { shape: [q.n, q.k], dtype: q.qtype, bytes });
    }
    for (const [name, t] of ckpt.lowRank) {
      let bytes = 0;
      for (const which of ['u', 'v'] as const) {
        const prefix = lowRankFactorPrefix(name, which);
        for (const part of ['weight', 'qweight', 'scales', 'qzeros', 'g_idx']) bytes += stored.get(`${prefix}.${part}`)?.byteLength ?? 0;
      }
      this.tensors.set(name, { shape: [t.n, t.k], dtype: 'lowrank', bytes, lowRank: { rank: t.rank, u: t.u, v: t.v } });
    }
    for (const name of ckpt.denseNames) {
      const t = stored.get(name)!;
      this.tensors.set(name, { shape: [...t.shape], dtype: t.dtype, bytes: t.byteLength });
    }
  }
  get metadata() {
    return this.ckpt.file.metadata;
  }
  async readF32(name: string): Promise<Float32Array> {
    if (this.ckpt.isLowRank(name)) return lowRankProduct(await this.ckpt.readLowRank(name));
    return this.ckpt.isQuantized(name) ? dequantize(await this.ckpt.readQuantized(name)) : this.ckpt.readDense(name);
  }
  async readQuantized(name: string): Promise<QuantizedWeight | null> {
    return this.ckpt.isQuantized(name) ? this.ckpt.readQuantized(name) : null;
  }
  async readLowRank(name: string): Promise<LowRankWeight | null> {
    return this.ckpt.isLowRank(name) ? this.ckpt.readLowRank(name) : null;
  }
  close(): Promise<void> {
    return this.ckpt.close();
  }
}

export async function openWeightSource(dir: string, opts: { checkFinite?: boolean } = {}): Promise<WeightSource> {
  if (await isEdgeqCheckpoint(dir)) return new EdgeqSource(await EdgeqCheckpoint.open(dir));
  // imported lazily: the rest of this module (EdgeqSource) also loads in a browser
  const { SafetensorsCheckpoint } = await import('../formats/safetensors/checkpoint.js');
  return new HfSource(await SafetensorsCheckpoint.open(dir), opts.checkFinite ?? true);
}
