/**
 * The subset of ONNX's protobuf IR edgeq writes (ModelProto → GraphProto → NodeProto / TensorProto /
 * ValueInfoProto), as plain objects, and their wire encoding. Field numbers are those of onnx/onnx.proto
 * (proto2); initializers either carry raw little-endian bytes or point into an external data file
 * (data_location = EXTERNAL with location / offset / length entries, as ONNX's external-data convention).
 */
import { ProtoWriter } from './protobuf-writer.js';

/** TensorProto.DataType values. */
export const ONNX_DTYPE = { FLOAT: 1, UINT8: 2, INT8: 3, INT32: 6, INT64: 7, BOOL: 9, FLOAT16: 10 } as const;
export type OnnxDtype = keyof typeof ONNX_DTYPE;

export const ONNX_DTYPE_BYTES: Record<OnnxDtype, number> = { FLOAT: 4, UINT8: 1, INT8: 1, INT32: 4, INT64: 8, BOOL: 1, FLOAT16: 2 };

export type TensorPayload =
  | { kind: 'raw'; bytes: Uint8Array }
  | { kind: 'external'; location: string; offset: number; length: number };

export interface OnnxTensor {
  name: string;
  dtype: OnnxDtype;
  dims: number[];
  data: TensorPayload;
}

export interface OnnxAttribute {
  name: string;
  i?: number;
  f?: number;
  s?: string;
  ints?: number[];
  floats?: number[];
  t?: OnnxTensor;
}

export interface OnnxNode {
  name: string;
  opType: string;
  /** '' (default ONNX domain) or e.g. 'com.microsoft'. */
  domain: string;
  /** '' marks an omitted optional input. */
  inputs: string[];
  outputs: string[];
  attributes: OnnxAttribute[];
}

/** A graph input/output: element type and shape (numbers are fixed dims, strings symbolic dims; null = unknown rank). */
export interface OnnxValueInfo {
  name: string;
  dtype: OnnxDtype;
  shape: (number | string)[] | null;
}

export interface OnnxGraph {
  name: string;
  nodes: OnnxNode[];
  initializers: OnnxTensor[];
  inputs: OnnxValueInfo[];
  outputs: OnnxValueInfo[];
}

export interface OnnxModel {
  irVersion: number;
  opsets: { domain: string; version: number }[];
  producerName: string;
  producerVersion: string;
  graph: OnnxGraph;
  metadata: Record<string, string>;
}

// AttributeProto.AttributeType
const ATTR = { FLOAT: 1, INT: 2, STRING: 3, TENSOR: 4, FLOATS: 6, INTS: 7 } as const;

export function encodeTensor(t: OnnxTensor): ProtoWriter {
  const w = new ProtoWriter();
  for (const d of t.dims) w.int(1, d);
  w.int(2, ONNX_DTYPE[t.dtype]);
  w.string(8, t.name);
  if (t.data.kind === 'raw') {
    w.bytes(9, t.data.bytes);
  } else {
    const entry = (k: string, v: string) => new ProtoWriter().string(1, k).string(2, v);
    w.message(13, entry('location', t.data.location));
    w.message(13, entry('offset', String(t.data.offset)));
    w.message(13, entry('length', String(t.data.length)));
    w.int(14, 1); // DataLocation.EXTERNAL
  }
  return w;
}

function encodeAttribute(a: OnnxAttribute): ProtoWriter {
  const w = new ProtoWriter().string(1, a.name);
  if (a.f !== undefined) w.float(2, a.f).int(20, ATTR.FLOAT);
  else if (a.i !== undefined) w.int(3, a.i).int(20, ATTR.INT);
  else if (a.s !== undefined) w.string(4, a.s).int(20, ATTR.STRING);
  else if (a.t !== undefined) w.message(5, encodeTensor(a.t)).int(20, ATTR.TENSOR);
  else if (a.floats !== undefined) {
    for (const f of a.floats) w.float(7, f);
    w.int(20, ATTR.FLOATS);
  } else if (a.ints !== undefined) {
    for (const i of a.ints) w.int(8, i);
    w.int(20, ATTR.INTS);
  } else throw new TypeError(`ONNX attribute '${a.name}' has no value`);
  return w;
}

function encodeNode(n: OnnxNode): ProtoWriter {
  const w = new ProtoWriter();
  for (const i of n.inputs) w.string(1, i);
  for (const o of n.outputs) w.string(2, o);
  w.string(3, n.name).string(4, n.opType);
  for (const a of n.attributes) w.message(5, encodeAttribute(a));
  if (n.domain) w.string(7, n.domain);
  return w;
}

function encodeValueInfo(v: OnnxValueInfo): ProtoWriter {
  const tensorType = new ProtoWriter().int(1, ONNX_DTYPE[v.dtype]);
  if (v.shape) {
    const shape = new ProtoWriter();
    for (const d of v.shape) shape.message(1, typeof d === 'number' ? new ProtoWriter().int(1, d) : new ProtoWriter().string(2, d));
    tensorType.message(2, shape);
  }
  const type = new ProtoWriter().message(1, tensorType);
  return new ProtoWriter().string(1, v.name).message(2, type);
}

function encodeGraph(g: OnnxGraph): ProtoWriter {
  const w = new ProtoWriter();
  for (const n of g.nodes) w.message(1, encodeNode(n));
  w.string(2, g.name);
  for (const t of g.initializers) w.message(5, encodeTensor(t));
  for (const i of g.inputs) w.message(11, encodeValueInfo(i));
  for (const o of g.outputs) w.message(12, encodeValueInfo(o));
  return w;
}

/** The serialized ModelProto. */
export function encodeModel(m: OnnxModel): Uint8Array {
  const w = new ProtoWriter().int(1, m.irVersion).string(2, m.producerName).string(3, m.producerVersion);
  w.message(7, encodeGraph(m.graph));
  for (const o of m.opsets) w.message(8, new ProtoWriter().string(1, o.domain).int(2, o.version));
  for (const [k, v] of Object.entries(m.metadata)) w.message(14, new ProtoWriter().string(1, k).string(2, v));
  return w.finish();
}
