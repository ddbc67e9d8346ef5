/**
 * Where a model's weights come from, as the loader sees them: a plain Hugging Face checkpoint (dense
 * tensors), or an edgeq checkpoint whose linears are quantized. `readF32` returns a logical HF tensor as
 * fp32 — dequantized for quantized linears (the "dequantized fp32 reference" every low-bit path is
 * checked against).
 */
import { EdgeqCheckpoint, isEdgeqCheckpoint } from '../formats/edgeq/reader.js';
import type { SafetensorsCheckpoint } from '../formats/safetensors/checkpoint.js';
import { dequantize } from '../qtypes/registry.js';
import type { QuantizedWeight } from '../qtypes/types.js';

export interface TensorShapeInfo {
  shape: number[];
  /** Storage dtype, or the quant type id for quantized linears. */
  dtype: string;
  /** Stored bytes of this logical tensor (all parts for quantized linears). */
  bytes: number;
}

export interface WeightSource {
  readonly kind: 'hf' | 'edgeq';
  readonly metadata: Readonly<Record<string, string>>;
  /** Logical tensor names (HF names) → shape/dtype/bytes. */
  readonly tensors: ReadonlyMap<string, TensorShapeInfo>;
  readF32(name: string): Promise<Float32Array>;
  /** The quantized form of a linear, or null when it is stored dense. */
  readQuantized(name: string): Promise<QuantizedWeight | null>;
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
    for (const name of ckpt.denseNames) {
      const t = stored.get(name)!;
      this.tensors.set(name, { shape: [...t.shape], dtype: t.dtype, bytes: t.byteLength });
    }
  }
  get metadata() {
    return this.ckpt.file.metadata;
  }
  async readF32(name: string): Promise<Float32Array> {
    return this.ckpt.isQuantized(name) ? dequantize(await this.ckpt.readQuantized(name)) : this.ckpt.readDense(name);
  }
  async readQuantized(name: string): Promise<QuantizedWeight | null> {
    return this.ckpt.isQuantized(name) ? this.ckpt.readQuantized(name) : null;
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
