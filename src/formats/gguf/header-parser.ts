/**
 * Parses a GGUF header (magic, version, KV metadata, tensor infos) from the first bytes of a file, with
 * hard limits so that hostile files get a FormatError instead of huge allocations or crashes. If the
 * header runs past the bytes given, throws NeedMoreBytes (the reader then retries with a larger prefix).
 */
import { FormatError } from '../../core/errors.js';
import { GGUF_VALUE_TYPES, type GgufScalar, type GgufValue, type GgufValueTypeName } from './metadata-values.js';
import { ggmlTensorBytes, ggmlTypeById, type GgmlTypeInfo } from './tensor-types.js';

export const GGUF_LIMITS = {
  maxTensors: 1 << 20,
  maxKv: 1 << 16,
  maxKeyBytes: 65535,
  maxStringBytes: 1 << 24,
  maxArrayElements: 1 << 24,
  maxNameBytes: 64,
  maxDims: 4,
  maxArrayDepth: 2,
} as const;

export interface GgufTensorInfo {
  name: string;
  /** ne[0] first. */
  dims: number[];
  type: GgmlTypeInfo;
  elements: number;
  /** Relative to the data section. */
  offset: number;
  bytes: number;
}

export interface GgufHeader {
  version: number;
  metadata: Map<string, GgufValue>;
  tensors: GgufTensorInfo[];
  alignment: number;
  /** Absolute file offset of the data section. */
  dataOffset: number;
}

export class NeedMoreBytes extends Error {
  constructor(readonly needed: number) {
    super(`header needs at least ${needed} bytes`);
  }
}

class Cursor {
  pos = 0;
  private readonly dv: DataView;
  constructor(
    private readonly buf: Uint8Array,
    private readonly fileSize: number,
    private readonly file: string | undefined,
  ) {
    this.dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }
  fail(code: string, msg: string): never {
    throw new FormatError(code, `${msg} (at byte ${this.pos})`, this.file, 'the GGUF file is corrupt or truncated; export or download it again');
  }
  need(n: number): void {
    if (this.pos + n > this.fileSize) this.fail('E_GGUF_TRUNCATED', `file ends inside the header (needs ${this.pos + n} bytes, has ${this.fileSize})`);
    if (this.pos + n > this.buf.length) throw new NeedMoreBytes(this.pos + n);
  }
  u8(): number {
    this.need(1);
    return this.dv.getUint8(this.pos++);
  }
  u32(): number {
    this.need(4);
    const v = this.dv.getUint32(this.pos, true);
    this.pos += 4;
    return v;
  }
  /** u64 as a number; values above 2^53 are refused. */
  u64(what: string): number {
    this.need(8);
    const v = this.dv.getBigUint64(this.pos, true);
    this.pos += 8;
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) this.fail('E_GGUF_RANGE', `${what} ${v} is out of range`);
    return Number(v);
  }
  string(maxBytes: number, what: string): string {
    const n = this.u64(`${what} length`);
    if (n > maxBytes) this.fail('E_GGUF_LIMIT', `${what} is ${n} bytes (limit ${maxBytes})`);
    this.need(n);
    const s = new TextDecoder('utf-8', { fatal: false }).decode(this.buf.subarray(this.pos, this.pos + n));
    this.pos += n;
    return s;
  }
  scalar(type: GgufValueTypeName): GgufScalar {
    const dv = this.dv;
    const at = (n: number): number => {
      this.need(n);
      const p = this.pos;
      this.pos += n;
      return p;
    };
    switch (type) {
      case 'u8':
        return dv.getUint8(at(1));
      case 'i8':
        return dv.getInt8(at(1));
      case 'u16':
        return dv.getUint16(at(2), true);
      case 'i16':
        return dv.getInt16(at(2), true);
      case 'u32':
        return dv.getUint32(at(4), true);
      case 'i32':
        return dv.getInt32(at(4), true);
      case 'f32':
        return dv.getFloat32(at(4), true);
      case 'bool': {
        const b = dv.getUint8(at(1));
        if (b > 1) this.fail('E_GGUF_VALUE', `bool value ${b}`);
        return b === 1;
      }
      case 'string':
        return this.string(GGUF_LIMITS.maxStringBytes, 'string value');
      case 'u64': {
        const v = dv.getBigUint64(at(8), true);
        return v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
      }
      case 'i64': {
        const v = dv.getBigInt64(at(8), true);
        return v <= BigInt(Number.MAX_SAFE_INTEGER) && v >= BigInt(Number.MIN_SAFE_INTEGER) ? Number(v) : v;
      }
      case 'f64':
        return dv.getFloat64(at(8), true);
      default:
        return this.fail('E_GGUF_VALUE', `'${type}' is not a scalar type`);
    }
  }
  valueType(): GgufValueTypeName {
    const id = this.u32();
    const t = GGUF_VALUE_TYPES[id];
    if (t === undefined) this.fail('E_GGUF_VALUE_TYPE', `unknown metadata value type ${id}`);
    return t;
  }
  value(type: GgufValueTypeName, depth = 0): GgufValue {
    if (type !== 'array') return { type, value: this.scalar(type) };
    if (depth >= GGUF_LIMITS.maxArrayDepth) this.fail('E_GGUF_LIMIT', 'arrays nested too deeply');
    const elemType = this.valueType();
    const n = this.u64('array length');
    if (n > GGUF_LIMITS.maxArrayElements) this.fail('E_GGUF_LIMIT', `array of ${n} elements (limit ${GGUF_LIMITS.maxArrayElements})`);
    // every element takes at least one byte: a length beyond the file is corrupt, not a reason to allocate
    if (this.pos + n > this.fileSize) this.fail('E_GGUF_TRUNCATED', `array of ${n} elements does not fit in the file`);
    if (elemType === 'array') {
      const out: GgufValue[] = [];
      for (let i = 0; i < n; i++) out.push(this.value('array', depth + 1));
      return { type: 'array', elemType, value: out };
    }
    const out: GgufScalar[] = new Array(n);
    for (let i = 0; i < n; i++) out[i] = this.scalar(elemType);
    return { type: 'array', elemType, value: out };
  }
}

/** Parses the header in `buf` (a prefix of a file of `fileSize` bytes). */
export function parseGgufHeader(buf: Uint8Array, fileSize: number, file?: string): GgufHeader {
  const c: Cursor = new Cursor(buf, fileSize, file);
  if (fileSize < 4) c.fail('E_GGUF_TRUNCATED', `file is ${fileSize} bytes`);
  const magic = c.u32();
  if (magic !== 0x46554747) c.fail('E_GGUF_MAGIC', `not a GGUF file (magic 0x${magic.toString(16).padStart(8, '0')}, expected "GGUF")`);
  const version = c.u32();
  if (version !== 2 && version !== 3) c.fail('E_GGUF_VERSION', `GGUF version ${version} is not supported (edgeq reads 2 and 3)`);
  const nTensors = c.u64('tensor count');
  const nKv = c.u64('metadata count');
  if (nTensors > GGUF_LIMITS.maxTensors) c.fail('E_GGUF_LIMIT', `${nTensors} tensors (limit ${GGUF_LIMITS.maxTensors})`);
  if (nKv > GGUF_LIMITS.maxKv) c.fail('E_GGUF_LIMIT', `${nKv} metadata entries (limit ${GGUF_LIMITS.maxKv})`);
  const metadata = new Map<string, GgufValue>();
  for (let i = 0; i < nKv; i++) {
    const key = c.string(GGUF_LIMITS.maxKeyBytes, 'metadata key');
    if (metadata.has(key)) c.fail('E_GGUF_DUP_KEY', `metadata key '${key}' appears twice`);
    metadata.set(key, c.value(c.valueType()));
  }
  let alignment = 32;
  const al = metadata.get('general.alignment');
  if (al) {
    const a = Number(al.value);
    if (al.type !== 'u32' || !Number.isInteger(a) || a <= 0 || a % 8 !== 0 || a > 1 << 20) c.fail('E_GGUF_ALIGNMENT', `general.alignment ${String(al.value)} is not a power-of-8 multiple`);
    alignment = a;
  }
  const tensors: GgufTensorInfo[] = [];
  const names = new Set<string>();
  for (let i = 0; i < nTensors; i++) {
    const name = c.string(GGUF_LIMITS.maxNameBytes, 'tensor name');
    if (names.has(name)) c.fail('E_GGUF_DUP_TENSOR', `tensor '${name}' appears twice`);
    names.add(name);
    const nDims = c.u32();
    if (nDims < 1 || nDims > GGUF_LIMITS.maxDims) c.fail('E_GGUF_DIMS', `tensor '${name}' has ${nDims} dimensions (1 to ${GGUF_LIMITS.maxDims})`);
    const dims: number[] = [];
    let elements = 1;
    for (let d = 0; d < nDims; d++) {
      const v = c.u64(`dimension of '${name}'`);
      if (v < 1) c.fail('E_GGUF_DIMS', `tensor '${name}' has a zero dimension`);
      elements *= v;
      if (elements > Number.MAX_SAFE_INTEGER) c.fail('E_GGUF_DIMS', `tensor '${name}' has too many elements`);
      dims.push(v);
    }
    const typeId = c.u32();
    const type = ggmlTypeById(typeId);
    if (!type) c.fail('E_GGUF_TYPE', `tensor '${name}' has unknown GGML type ${typeId}`);
    if (dims[0]! % type.blockSize !== 0) c.fail('E_GGUF_BLOCK', `tensor '${name}': row length ${dims[0]} is not a multiple of ${type.name}'s block size ${type.blockSize}`);
    const offset = c.u64(`offset of '${name}'`);
    if (offset % alignment !== 0) c.fail('E_GGUF_ALIGNMENT', `tensor '${name}' offset ${offset} is not a multiple of ${alignment}`);
    tensors.push({ name, dims, type, elements, offset, bytes: ggmlTensorBytes(type, elements) });
  }
  const dataOffset = Math.ceil(c.pos / alignment) * alignment;
  const dataSize = fileSize - dataOffset;
  const sorted = [...tensors].sort((a, b) => a.offset - b.offset);
  for (let i = 0; i < sorted.length; i++) {
    const t = sorted[i]!;
    if (t.offset + t.bytes > dataSize)
      throw new FormatError('E_GGUF_TRUNCATED', `tensor '${t.name}' (${t.bytes} bytes at data offset ${t.offset}) extends past the end of the file`, file, 'the GGUF file is truncated; export or download it again');
    const next = sorted[i + 1];
    if (next && t.offset + t.bytes > next.offset) throw new FormatError('E_GGUF_OVERLAP', `tensors '${t.name}' and '${next.name}' overlap`, file);
  }
  return { version, metadata, tensors, alignment, dataOffset };
}
