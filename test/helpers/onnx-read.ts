/**
 * Reads back an exported ONNX model with protobufjs from a transcription of onnx.proto (independent of
 * edgeq's writer), and decodes QNN param encodings against their float initializers.
 */
import fs from 'node:fs';
import path from 'node:path';
import protobuf from 'protobufjs';
import { expect } from 'vitest';
import { ONNX_DATA_FILE, ONNX_MODEL_FILE } from '../../src/formats/onnx/index.js';
import type { LpbqEncoding, ParamEncoding, PerChannelEncoding } from '../../src/formats/qnn/index.js';

// The fields of onnx/onnx.proto (proto2) this test reads, transcribed by field number.
const ONNX_SUBSET = `
syntax = "proto2";
package onnx;
message StringStringEntryProto { optional string key = 1; optional string value = 2; }
message TensorProto {
  repeated int64 dims = 1; optional int32 data_type = 2; optional string name = 8; optional bytes raw_data = 9;
  repeated StringStringEntryProto external_data = 13; optional int32 data_location = 14;
}
message NodeProto { repeated string input = 1; repeated string output = 2; optional string name = 3; optional string op_type = 4; optional string domain = 7; }
message ValueInfoProto { optional string name = 1; }
message GraphProto { repeated NodeProto node = 1; optional string name = 2; repeated TensorProto initializer = 5; repeated ValueInfoProto input = 11; repeated ValueInfoProto output = 12; }
message ModelProto { optional int64 ir_version = 1; optional GraphProto graph = 7; }
`;

export interface ReadTensor {
  name: string;
  dims: number[];
  data_type: number;
  raw_data?: Uint8Array;
  external_data?: { key: string; value: string }[];
}
export interface ReadGraph {
  node: { input?: string[]; output?: string[]; op_type: string }[];
  initializer: ReadTensor[];
  input: { name: string }[];
  output: { name: string }[];
}

export function readOnnx(dir: string): { graph: ReadGraph; initializerF32: (name: string) => Float32Array } {
  const root = protobuf.parse(ONNX_SUBSET, { keepCase: true }).root;
  const Model = root.lookupType('onnx.ModelProto');
  const msg = Model.decode(fs.readFileSync(path.join(dir, ONNX_MODEL_FILE)));
  const graph = Model.toObject(msg, { longs: Number, defaults: false, arrays: true }).graph as ReadGraph;
  const data = fs.readFileSync(path.join(dir, ONNX_DATA_FILE));
  const initializerF32 = (name: string): Float32Array => {
    const t = graph.initializer.find((i) => i.name === name)!;
    expect(t.data_type).toBe(1);
    const ext = Object.fromEntries((t.external_data ?? []).map((e) => [e.key, e.value]));
    const bytes = t.raw_data ?? data.subarray(Number(ext.offset), Number(ext.offset) + Number(ext.length));
    return new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
  };
  return { graph, initializerF32 };
}

/** Decodes a param entry for a [K, N] initializer into its integers (real = int · effective scale). */
export function decodeEntry(e: ParamEncoding, w: Float32Array, K: number, N: number): { ints: Float64Array; maxFrac: number } {
  const ints = new Float64Array(K * N);
  let maxFrac = 0;
  for (let k = 0; k < K; k++) {
    for (let n = 0; n < N; n++) {
      const step =
        e.enc_type === 'LPBQ' ? Math.fround(e.scale[n] * (e as LpbqEncoding).per_block_int_scale[Math.floor(k / e.block_size) * N + n]) : (e as PerChannelEncoding).scale[n];
      const v = w[k * N + n] / step;
      ints[k * N + n] = Math.round(v);
      maxFrac = Math.max(maxFrac, Math.abs(v - Math.round(v)));
    }
  }
  return { ints, maxFrac };
}

