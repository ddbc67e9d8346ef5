/**
 * Incremental construction of an ONNX graph: nodes get readable, unique names (`/model/layers.0/attn/
 * q_proj/MatMul`) and their outputs `<node name>/output_<i>`; initializers go through an InitializerSink,
 * which streams large tensors into the external data file as they are added, so the weights are never
 * all in memory at once and the .onnx protobuf holds only the graph and small constants.
 */
import { EdgeqError } from '../../core/errors.js';
import type { OnnxAttribute, OnnxDtype, OnnxGraph, OnnxNode, OnnxTensor, OnnxValueInfo, TensorPayload } from './onnx-model.js';

export interface InitializerSink {
  /** Store the bytes of initializer `name` and say where they are (inline or in the external file). */
  put(name: string, bytes: Uint8Array): Promise<TensorPayload>;
}

/** Keeps every initializer inline (tests, tiny graphs). */
export const INLINE_SINK: InitializerSink = {
  async put(_name, bytes) {
    return { kind: 'raw', bytes };
  },
};

export type AttrMap = Record<string, number | string | number[] | { float: number } | { floats: number[] }>;

function toAttributes(attrs: AttrMap | undefined): OnnxAttribute[] {
  if (!attrs) return [];
  return Object.entries(attrs).map(([name, v]) => {
    if (typeof v === 'number') {
      if (!Number.isInteger(v)) throw new EdgeqError('E_ONNX_ATTR', `attribute ${name}: ${v} is not an integer (use { float })`);
      return { name, i: v };
    }
    if (typeof v === 'string') return { name, s: v };
    if (Array.isArray(v)) return { name, ints: v };
    if ('float' in v) return { name, f: v.float };
    return { name, floats: v.floats };
  });
}

function bytesOf(a: Float32Array | Int32Array | BigInt64Array | Uint8Array | Uint16Array): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

export class GraphBuilder {
  readonly nodes: OnnxNode[] = [];
  readonly initializers: OnnxTensor[] = [];
  readonly inputs: OnnxValueInfo[] = [];
  readonly outputs: OnnxValueInfo[] = [];
  private readonly names = new Set<string>();
  private readonly constCache = new Map<string, string>();

  constructor(private readonly sink: InitializerSink) {}

  private claim(name: string): string {
    if (this.names.has(name)) throw new EdgeqError('E_ONNX_NAME', `duplicate ONNX tensor/node name '${name}'`);
    this.names.add(name);
    return name;
  }

  /** Adds a node named `name`; returns its `outputs` output tensor names (or the explicit names given). */
  node(
    opType: string,
    name: string,
    inputs: string[],
    opts: { attrs?: AttrMap; outputs?: number | string[]; domain?: string } = {},
  ): string[] {
    this.claim(name);
    const outs = Array.isArray(opts.outputs)
      ? opts.outputs.map((o) => this.claim(o))
      : Array.from({ length: opts.outputs ?? 1 }, (_, i) => this.claim(`${name}/output_${i}`));
    this.nodes.push({ name, opType, domain: opts.domain ?? '', inputs, outputs: outs, attributes: toAttributes(opts.attrs) });
    return outs;
  }

  /** Single-output node; returns its output name. */
  op(opType: string, name: string, inputs: string[], attrs?: AttrMap, domain?: string): string {
    return this.node(opType, name, inputs, { attrs, domain })[0];
  }

  input(name: string, dtype: OnnxDtype, shape: (number | string)[]): string {
    this.inputs.push({ name: this.claim(name), dtype, shape });
    return name;
  }

  /** Declares an existing tensor (a node output) as a graph output. */
  output(name: string, dtype: OnnxDtype, shape: (number | string)[] | null): void {
    this.outputs.push({ name, dtype, shape });
  }

  async initializer(name: string, dtype: OnnxDtype, dims: number[], data: Float32Array | Int32Array | BigInt64Array | Uint8Array | Uint16Array): Promise<string> {
    this.claim(name);
    const payload = await this.sink.put(name, bytesOf(data));
    this.initializers.push({ name, dtype, dims, data: payload });
    return name;
  }

  /** A small inline int64 constant (shapes, axes), shared by value. */
  constI64(values: number[], scalar = false): string {
    const key = `i64:${scalar ? 's' : 'v'}:${values.join(',')}`;
    let name = this.constCache.get(key);
    if (!name) {
      name = this.claim(`/const/i64_${this.constCache.size}`);
      this.initializers.push({ name, dtype: 'INT64', dims: scalar ? [] : [values.length], data: { kind: 'raw', bytes: bytesOf(BigInt64Array.from(values.map(BigInt))) } });
      this.constCache.set(key, name);
    }
    return name;
  }

  /** A small inline float32 scalar constant, shared by value. */
  constF32(value: number): string {
    const key = `f32:${Object.is(value, -0) ? '-0' : value}`;
    let name = this.constCache.get(key);
    if (!name) {
      name = this.claim(`/const/f32_${this.constCache.size}`);
      this.initializers.push({ name, dtype: 'FLOAT', dims: [], data: { kind: 'raw', bytes: bytesOf(Float32Array.of(value)) } });
      this.constCache.set(key, name);
    }
    return name;
  }

  graph(name: string): OnnxGraph {
    return { name, nodes: this.nodes, initializers: this.initializers, inputs: this.inputs, outputs: this.outputs };
  }
}
