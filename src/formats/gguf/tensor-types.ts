/**
 * The GGML tensor types: one table with each type's id, block size and bytes per block, and — for the
 * types edgeq writes — its reference codec (bit-exact to llama.cpp, see codec-*.ts). Types without a
 * codec are known so the reader can size and list them (`edgeq inspect`), not decode them.
 */
import { FormatError } from '../../core/errors.js';
import { decodeF16, decodeF32, dequantizeQ4_0, dequantizeQ8_0, encodeF16, encodeF32, quantizeQ4_0, quantizeQ8_0 } from './codec-simple.js';
import {
  dequantizeQ2_K,
  dequantizeQ3_K,
  dequantizeQ4_K,
  dequantizeQ6_K,
  quantizeQ2_K,
  quantizeQ3_K,
  quantizeQ4_K,
  quantizeQ6_K,
} from './codec-k-quants.js';

export interface GgmlCodec {
  /** x.length must be a multiple of the block size. */
  quantize(x: Float32Array): Uint8Array;
  /** Decodes out.length weights from b. */
  dequantize(b: Uint8Array, out: Float32Array): Float32Array;
}

export interface GgmlTypeInfo {
  id: number;
  name: string;
  /** Weights per block (1 for plain types). */
  blockSize: number;
  /** Bytes per block. */
  typeSize: number;
  codec?: GgmlCodec;
}

/** Names of the types edgeq can write (lower case as on the command line). */
export type WritableType = 'f32' | 'f16' | 'q8_0' | 'q4_0' | 'q4_k' | 'q6_k' | 'q3_k' | 'q2_k';

const TYPES: readonly GgmlTypeInfo[] = [
  { id: 0, name: 'F32', blockSize: 1, typeSize: 4, codec: { quantize: encodeF32, dequantize: decodeF32 } },
  { id: 1, name: 'F16', blockSize: 1, typeSize: 2, codec: { quantize: encodeF16, dequantize: decodeF16 } },
  { id: 2, name: 'Q4_0', blockSize: 32, typeSize: 18, codec: { quantize: quantizeQ4_0, dequantize: dequantizeQ4_0 } },
  { id: 3, name: 'Q4_1', blockSize: 32, typeSize: 20 },
  { id: 6, name: 'Q5_0', blockSize: 32, typeSize: 22 },
  { id: 7, name: 'Q5_1', blockSize: 32, typeSize: 24 },
  { id: 8, name: 'Q8_0', blockSize: 32, typeSize: 34, codec: { quantize: quantizeQ8_0, dequantize: dequantizeQ8_0 } },
  { id: 9, name: 'Q8_1', blockSize: 32, typeSize: 36 },
  { id: 10, name: 'Q2_K', blockSize: 256, typeSize: 84, codec: { quantize: quantizeQ2_K, dequantize: dequantizeQ2_K } },
  { id: 11, name: 'Q3_K', blockSize: 256, typeSize: 110, codec: { quantize: quantizeQ3_K, dequantize: dequantizeQ3_K } },
  { id: 12, name: 'Q4_K', blockSize: 256, typeSize: 144, codec: { quantize: quantizeQ4_K, dequantize: dequantizeQ4_K } },
  { id: 13, name: 'Q5_K', blockSize: 256, typeSize: 176 },
  { id: 14, name: 'Q6_K', blockSize: 256, typeSize: 210, codec: { quantize: quantizeQ6_K, dequantize: dequantizeQ6_K } },
  { id: 15, name: 'Q8_K', blockSize: 256, typeSize: 292 },
  { id: 16, name: 'IQ2_XXS', blockSize: 256, typeSize: 66 },
  { id: 17, name: 'IQ2_XS', blockSize: 256, typeSize: 74 },
  { id: 18, name: 'IQ3_XXS', blockSize: 256, typeSize: 98 },
  { id: 19, name: 'IQ1_S', blockSize: 256, typeSize: 50 },
  { id: 20, name: 'IQ4_NL', blockSize: 32, typeSize: 18 },
  { id: 21, name: 'IQ3_S', blockSize: 256, typeSize: 110 },
  { id: 22, name: 'IQ2_S', blockSize: 256, typeSize: 82 },
  { id: 23, name: 'IQ4_XS', blockSize: 256, typeSize: 136 },
  { id: 24, name: 'I8', blockSize: 1, typeSize: 1 },
  { id: 25, name: 'I16', blockSize: 1, typeSize: 2 },
  { id: 26, name: 'I32', blockSize: 1, typeSize: 4 },
  { id: 27, name: 'I64', blockSize: 1, typeSize: 8 },
  { id: 28, name: 'F64', blockSize: 1, typeSize: 8 },
  { id: 29, name: 'IQ1_M', blockSize: 256, typeSize: 56 },
  { id: 30, name: 'BF16', blockSize: 1, typeSize: 2 },
  { id: 34, name: 'TQ1_0', blockSize: 256, typeSize: 54 },
  { id: 35, name: 'TQ2_0', blockSize: 256, typeSize: 66 },
  { id: 39, name: 'MXFP4', blockSize: 32, typeSize: 17 },
];

const BY_ID = new Map(TYPES.map((t) => [t.id, t]));
const BY_NAME = new Map(TYPES.map((t) => [t.name.toLowerCase(), t]));

export const WRITABLE_TYPES: readonly WritableType[] = ['f32', 'f16', 'q8_0', 'q4_0', 'q4_k', 'q6_k', 'q3_k', 'q2_k'];

export function ggmlTypeById(id: number): GgmlTypeInfo | undefined {
  return BY_ID.get(id);
}

export function ggmlType(name: WritableType | string): GgmlTypeInfo {
  const t = BY_NAME.get(name.toLowerCase());
  if (!t) throw new FormatError('E_GGUF_TYPE', `unknown GGML type '${name}'`, undefined, `known: ${TYPES.map((x) => x.name).join(', ')}`);
  return t;
}

/** The codec of a writable type. */
export function ggmlCodec(t: GgmlTypeInfo): GgmlCodec {
  if (!t.codec) throw new FormatError('E_GGUF_TYPE', `GGML type ${t.name} has no codec in edgeq`, undefined, `edgeq decodes ${WRITABLE_TYPES.join(', ')}`);
  return t.codec;
}

/** Bytes of a tensor of `elements` weights (elements must be a multiple of the block size). */
export function ggmlTensorBytes(t: GgmlTypeInfo, elements: number): number {
  return (elements / t.blockSize) * t.typeSize;
}

/** Bits per weight of a type. */
export function ggmlBitsPerWeight(t: GgmlTypeInfo): number {
  return (t.typeSize * 8) / t.blockSize;
}
