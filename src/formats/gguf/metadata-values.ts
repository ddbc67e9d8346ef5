/**
 * GGUF metadata values: the 13 value types, typed constructors for writers (`gv.u32(2)`, `gv.strings([...])`)
 * and a binary encoder. Layout: `u32 value_type` then the value; strings are `u64 length + UTF-8`; arrays are
 * `u32 elem_type, u64 count, elements`.
 */
export const GGUF_VALUE_TYPES = ['u8', 'i8', 'u16', 'i16', 'u32', 'i32', 'f32', 'bool', 'string', 'array', 'u64', 'i64', 'f64'] as const;
export type GgufValueTypeName = (typeof GGUF_VALUE_TYPES)[number];
export type GgufScalarTypeName = Exclude<GgufValueTypeName, 'array'>;

export type GgufScalar = number | bigint | boolean | string;

export type GgufValue =
  | { type: GgufScalarTypeName; value: GgufScalar }
  | { type: 'array'; elemType: GgufValueTypeName; value: GgufScalar[] | GgufValue[] };

export function valueTypeId(t: GgufValueTypeName): number {
  return GGUF_VALUE_TYPES.indexOf(t);
}

/** Constructors for metadata values. */
export const gv = {
  u8: (v: number): GgufValue => ({ type: 'u8', value: v }),
  i32: (v: number): GgufValue => ({ type: 'i32', value: v }),
  u32: (v: number): GgufValue => ({ type: 'u32', value: v }),
  u64: (v: number | bigint): GgufValue => ({ type: 'u64', value: v }),
  f32: (v: number): GgufValue => ({ type: 'f32', value: v }),
  bool: (v: boolean): GgufValue => ({ type: 'bool', value: v }),
  str: (v: string): GgufValue => ({ type: 'string', value: v }),
  strings: (v: string[]): GgufValue => ({ type: 'array', elemType: 'string', value: v }),
  f32s: (v: ArrayLike<number>): GgufValue => ({ type: 'array', elemType: 'f32', value: Array.from(v) }),
  i32s: (v: ArrayLike<number>): GgufValue => ({ type: 'array', elemType: 'i32', value: Array.from(v) }),
};

/** The plain JS value of a metadata value (arrays as arrays). */
export function plainValue(v: GgufValue): unknown {
  if (v.type !== 'array') return v.value;
  return (v.value as unknown[]).map((e) => (typeof e === 'object' && e !== null && 'type' in (e as object) ? plainValue(e as GgufValue) : e));
}

/** Growable little-endian byte sink. */
export class ByteSink {
  private buf = new Uint8Array(1 << 16);
  private dv = new DataView(this.buf.buffer);
  length = 0;

  private reserve(n: number): void {
    if (this.length + n <= this.buf.length) return;
    let cap = this.buf.length * 2;
    while (cap < this.length + n) cap *= 2;
    const next = new Uint8Array(cap);
    next.set(this.buf.subarray(0, this.length));
    this.buf = next;
    this.dv = new DataView(next.buffer);
  }
  u8(v: number): void {
    this.reserve(1);
    this.dv.setUint8(this.length, v);
    this.length += 1;
  }
  i8(v: number): void {
    this.reserve(1);
    this.dv.setInt8(this.length, v);
    this.length += 1;
  }
  u16(v: number): void {
    this.reserve(2);
    this.dv.setUint16(this.length, v, true);
    this.length += 2;
  }
  i16(v: number): void {
    this.reserve(2);
    this.dv.setInt16(this.length, v, true);
    this.length += 2;
  }
  u32(v: number): void {
    this.reserve(4);
    this.dv.setUint32(this.length, v, true);
    this.length += 4;
  }
  i32(v: number): void {
    this.reserve(4);
    this.dv.setInt32(this.length, v, true);
    this.length += 4;
  }
  f32(v: number): void {
    this.reserve(4);
    this.dv.setFloat32(this.length, v, true);
    this.length += 4;
  }
  f64(v: number): void {
    this.reserve(8);
    this.dv.setFloat64(this.length, v, true);
    this.length += 8;
  }
  u64(v: number | bigint): void {
    this.reserve(8);
    this.dv.setBigUint64(this.length, BigInt(v), true);
    this.length += 8;
  }
  i64(v: number | bigint): void {
    this.reserve(8);
    this.dv.setBigInt64(this.length, BigInt(v), true);
    this.length += 8;
  }
  bytes(b: Uint8Array): void {
    this.reserve(b.length);
    this.buf.set(b, this.length);
    this.length += b.length;
  }
  string(s: string): void {
    const b = new TextEncoder().encode(s);
    this.u64(b.length);
    this.bytes(b);
  }
  /** Zero bytes up to a multiple of `alignment` of the absolute position `base + length`. */
  padTo(alignment: number, base = 0): void {
    const pad = (alignment - ((base + this.length) % alignment)) % alignment;
    this.reserve(pad);
    this.buf.fill(0, this.length, this.length + pad);
    this.length += pad;
  }
  result(): Uint8Array {
    return this.buf.subarray(0, this.length);
  }
}

function writeScalar(sink: ByteSink, type: GgufScalarTypeName, v: GgufScalar): void {
  switch (type) {
    case 'u8':
      return sink.u8(Number(v));
    case 'i8':
      return sink.i8(Number(v));
    case 'u16':
      return sink.u16(Number(v));
    case 'i16':
      return sink.i16(Number(v));
    case 'u32':
      return sink.u32(Number(v));
    case 'i32':
      return sink.i32(Number(v));
    case 'f32':
      return sink.f32(Number(v));
    case 'bool':
      return sink.u8(v ? 1 : 0);
    case 'string':
      return sink.string(String(v));
    case 'u64':
      return sink.u64(typeof v === 'bigint' ? v : Number(v));
    case 'i64':
      return sink.i64(typeof v === 'bigint' ? v : Number(v));
    case 'f64':
      return sink.f64(Number(v));
  }
}

/** Encodes `u32 type` + value. */
export function writeValue(sink: ByteSink, v: GgufValue): void {
  sink.u32(valueTypeId(v.type));
  writeValueBody(sink, v);
}

function writeValueBody(sink: ByteSink, v: GgufValue): void {
  if (v.type !== 'array') return writeScalar(sink, v.type, v.value);
  sink.u32(valueTypeId(v.elemType));
  sink.u64(v.value.length);
  if (v.elemType === 'array') for (const e of v.value as GgufValue[]) writeValueBody(sink, e);
  else for (const e of v.value as GgufScalar[]) writeScalar(sink, v.elemType, e);
}
