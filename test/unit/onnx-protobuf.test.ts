/**
 * edgeq's protobuf/ONNX encoder read back by protobufjs (an independent decoder) with a transcription of
 * the onnx.proto fields involved: varints including negative int64 (two's complement, 10 bytes), floats,
 * strings, nested messages, repeated fields, every attribute kind with its AttributeType, external-data
 * entries and data_location, symbolic and fixed dims, opset imports and metadata.
 */
import protobuf from 'protobufjs';
import { describe, expect, it } from 'vitest';
import { encodeModel, type OnnxModel } from '../../src/formats/onnx/onnx-model.js';

const SCHEMA = `
syntax = "proto2";
package onnx;
message StringStringEntryProto { optional string key = 1; optional string value = 2; }
message TensorProto {
  repeated int64 dims = 1; optional int32 data_type = 2; optional string name = 8; optional bytes raw_data = 9;
  repeated StringStringEntryProto external_data = 13; optional int32 data_location = 14;
}
message AttributeProto {
  optional string name = 1; optional float f = 2; optional int64 i = 3; optional bytes s = 4; optional TensorProto t = 5;
  repeated float floats = 7; repeated int64 ints = 8; optional int32 type = 20;
}
message NodeProto { repeated string input = 1; repeated string output = 2; optional string name = 3; optional string op_type = 4; repeated AttributeProto attribute = 5; optional string domain = 7; }
message TensorShapeProto { message Dimension { optional int64 dim_value = 1; optional string dim_param = 2; } repeated Dimension dim = 1; }
message TypeProto { message Tensor { optional int32 elem_type = 1; optional TensorShapeProto shape = 2; } optional Tensor tensor_type = 1; }
message ValueInfoProto { optional string name = 1; optional TypeProto type = 2; }
message GraphProto { repeated NodeProto node = 1; optional string name = 2; repeated TensorProto initializer = 5; repeated ValueInfoProto input = 11; repeated ValueInfoProto output = 12; }
message OperatorSetIdProto { optional string domain = 1; optional int64 version = 2; }
message ModelProto {
  optional int64 ir_version = 1; optional string producer_name = 2; optional string producer_version = 3; optional GraphProto graph = 7;
  repeated OperatorSetIdProto opset_import = 8; repeated StringStringEntryProto metadata_props = 14;
}
`;

describe('ONNX protobuf encoding', () => {
  it('decodes with protobufjs to exactly what was written', () => {
    const model: OnnxModel = {
      irVersion: 8,
      opsets: [
        { domain: '', version: 17 },
        { domain: 'com.microsoft', version: 1 },
      ],
      producerName: 'edgeq',
      producerVersion: '0.1.0',
      metadata: { 'edgeq.source': 'ünïcode ✓' },
      graph: {
        name: 'g',
        inputs: [{ name: 'x', dtype: 'FLOAT', shape: ['batch', 3, 'seq'] }],
        outputs: [{ name: 'y', dtype: 'FLOAT', shape: null }],
        initializers: [
          { name: 'small', dtype: 'INT64', dims: [2], data: { kind: 'raw', bytes: new Uint8Array(16).fill(7) } },
          { name: 'big', dtype: 'UINT8', dims: [4, 3, 16], data: { kind: 'external', location: 'model.onnx.data', offset: 4096, length: 192 } },
        ],
        nodes: [
          {
            name: 'n0',
            opType: 'MatMulNBits',
            domain: 'com.microsoft',
            inputs: ['x', 'big', '', 'small'],
            outputs: ['y'],
            attributes: [
              { name: 'axis', i: -1 },
              { name: 'big_i', i: 2 ** 40 + 3 },
              { name: 'eps', f: 1e-5 },
              { name: 'mode', s: 'rotate-half' },
              { name: 'perm', ints: [0, -2, 1] },
              { name: 'fs', floats: [0.5, -2] },
            ],
          },
        ],
      },
    };
    const root = protobuf.parse(SCHEMA, { keepCase: true }).root;
    const T = root.lookupType('onnx.ModelProto');
    const m = T.toObject(T.decode(encodeModel(model)), { longs: Number, bytes: Array, arrays: true }) as any;
    expect(m.ir_version).toBe(8);
    expect(m.producer_name).toBe('edgeq');
    expect(m.opset_import).toEqual([{ domain: '', version: 17 }, { domain: 'com.microsoft', version: 1 }]);
    expect(m.metadata_props).toEqual([{ key: 'edgeq.source', value: 'ünïcode ✓' }]);
    const g = m.graph;
    expect(g.input[0].type.tensor_type.elem_type).toBe(1);
    expect(g.input[0].type.tensor_type.shape.dim).toEqual([{ dim_param: 'batch' }, { dim_value: 3 }, { dim_param: 'seq' }]);
    expect(g.output[0].type.tensor_type.shape).toBeUndefined();
    const [small, big] = g.initializer;
    expect(small).toMatchObject({ name: 'small', data_type: 7, dims: [2] });
    expect(small.raw_data).toEqual(Array(16).fill(7));
    expect(big).toMatchObject({ name: 'big', data_type: 2, dims: [4, 3, 16], data_location: 1 });
    expect(big.external_data).toEqual([{ key: 'location', value: 'model.onnx.data' }, { key: 'offset', value: '4096' }, { key: 'length', value: '192' }]);
    const n = g.node[0];
    expect(n).toMatchObject({ name: 'n0', op_type: 'MatMulNBits', domain: 'com.microsoft', input: ['x', 'big', '', 'small'], output: ['y'] });
    const attr = Object.fromEntries(n.attribute.map((a: any) => [a.name, a]));
    expect(attr.axis).toMatchObject({ i: -1, type: 2 });
    expect(attr.big_i).toMatchObject({ i: 2 ** 40 + 3, type: 2 });
    expect(attr.eps.type).toBe(1);
    expect(attr.eps.f).toBe(Math.fround(1e-5));
    expect(attr.mode.type).toBe(3);
    expect(Buffer.from(attr.mode.s).toString()).toBe('rotate-half');
    expect(attr.perm).toMatchObject({ ints: [0, -2, 1], type: 7 });
    expect(attr.fs).toMatchObject({ floats: [0.5, -2], type: 6 });
  });
});
