/**
 * Storage dtypes and bit-exact float conversions.
 *
 * - The storage dtype table lives here and only here (`STORAGE_DTYPES`).
 * - f16/bf16 <-> f32 conversions are done on bit patterns: round-to-nearest-even, overflow to ±Inf,
 *   subnormals kept, NaN stays NaN (never becomes Inf).
 * - All multi-byte storage is little-endian (safetensors, GGUF); decoders work on any host.
 */
import { FormatError, UnsupportedError } from './errors.js';

/** Element types a checkpoint may store. `kind` says how values map to float32. */
export const STORAGE_DTYPES = {
  F64: { bytes: 8, kind: 'float' },
  F32: { bytes: 4, kind: 'float' },
  F16: { bytes: 2, kind: 'float' },
  BF16: { bytes: 2, kind: 'float' },
  I64: { bytes: 8, kind: 'int' },
  I32: { bytes: 4, kind: 'int' },
  I16: { bytes: 2, kind: 'int' },
  I8: { bytes: 1, kind: 'int' },
  U8: { bytes: 1, kind: 'uint' },
} as const satisfies Record<string, { bytes: number; kind: 'float' | 'int' | 'uint' }>;

export type StorageDtype = keyof typeof STORAGE_DTYPES;

export function isStorageDtype(s: unknown): s is StorageDtype {
  return typeof s === 'string' && Object.prototype.hasOwnProperty.call(STORAGE_DTYPES, s);
}

/** Bytes per element of a storage dtype. */
export function dtypeBytes(dtype: StorageDtype): number {
  return STORAGE_DTYPES[dtype].bytes;
}

/** True when this host stores typed arrays little-endian (every platform Node ships on except s390x). */
export const HOST_LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

// Scratch cell to reinterpret between f32 values and their u32 bit patterns.
const scratchF32 = new Float32Array(1);
const scratchU32 = new Uint32Array(scratchF32.buffer);

export function f32ToBits(x: number): number {
  scratchF32[0] = x;
  return scratchU32[0]!;
}

export function bitsToF32(u: number): number {
  scratchU32[0] = u >>> 0;
  return scratchF32[0]!;
}

// ---------------------------------------------------------------------------------------------------
// half precision (IEEE 754 binary16: 1 sign, 5 exponent, 10 mantissa bits)

/** f16 bit pattern -> f32 bit pattern (exact; NaN payload kept in the top mantissa bits). */
export function f16BitsToF32Bits(h: number): number {
  const sign = (h & 0x8000) << 16;
  const exp = (h >>> 10) & 0x1f;
  let mant = h & 0x3ff;
  if (exp === 0x1f) return (sign | 0x7f800000 | (mant << 13)) >>> 0; // Inf / NaN
  if (exp === 0) {
    if (mant === 0) return sign >>> 0; // ±0
    // subnormal: normalise so the implicit bit is set; f32 has room for every f16 subnormal
    let e = 1;
    while ((mant & 0x400) === 0) {
      mant <<= 1;
      e--;
    }
    return (sign | ((e + 112) << 23) | ((mant & 0x3ff) << 13)) >>> 0;
  }
  return (sign | ((exp + 112) << 23) | (mant << 13)) >>> 0;
}

export function f16BitsToF32(h: number): number {
  return bitsToF32(f16BitsToF32Bits(h & 0xffff));
}

/** f32 bit pattern -> f16 bit pattern, round-to-nearest-even. */
export function f32BitsToF16Bits(u: number): number {
  const sign = (u >>> 16) & 0x8000;
  const exp = (u >>> 23) & 0xff;
  const mant = u & 0x7fffff;
  if (exp === 0xff) {
    // Inf stays Inf; NaN becomes a quiet NaN (top payload bits kept, quiet bit forced so it is never Inf)
    return mant === 0 ? sign | 0x7c00 : sign | 0x7e00 | (mant >>> 13);
  }
  const e = exp - 127 + 15; // rebias
  if (e >= 0x1f) return sign | 0x7c00; // too large even before rounding: Inf
  if (e <= 0) {
    // result is an f16 subnormal (or zero): value = m * 2^(e-14) in units of 2^-24
    if (e < -10) return sign; // below half the smallest subnormal: rounds to zero
    const m = mant | 0x800000; // 24-bit significand with the implicit bit
    const shift = 14 - e; // 14..24
    let q = m >>> shift;
    const rem = m & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    if (rem > half || (rem === half && (q & 1) === 1)) q++; // may carry into the smallest normal: correct
    return sign | q;
  }
  let q = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (q & 1) === 1)) q++; // carry may reach 0x7c00 = Inf: correct
  return sign | q;
}

/** f32 value -> f16 bits. The input is first rounded to f32 (the function's contract is f32 -> f16). */
export function f32ToF16Bits(x: number): number {
  return f32BitsToF16Bits(f32ToBits(x));
}

// ---------------------------------------------------------------------------------------------------
// bfloat16 (top 16 bits of an f32)

export function bf16BitsToF32(h: number): number {
  return bitsToF32((h & 0xffff) << 16);
}

/** f32 bit pattern -> bf16 bit pattern, round-to-nearest-even; NaN stays NaN. */
export function f32BitsToBf16Bits(u: number): number {
  u >>>= 0;
  if ((u & 0x7f800000) === 0x7f800000 && (u & 0x7fffff) !== 0) {
    return ((u >>> 16) | 0x40) & 0xffff; // quiet NaN; truncation alone could turn it into Inf
  }
  const rounding = 0x7fff + ((u >>> 16) & 1);
  return Math.floor((u + rounding) / 0x10000) & 0xffff; // float arithmetic: no 32-bit overflow
}

export function f32ToBf16Bits(x: number): number {
  return f32BitsToBf16Bits(f32ToBits(x));
}

// ---------------------------------------------------------------------------------------------------
// bulk conversions

let f16Table: Float32Array | undefined;

/** 65536-entry f16 -> f32 table (256 KiB), built on first use. */
export function getF16Table(): Float32Array {
  if (!f16Table) {
    const t = new Float32Array(65536);
    const bits = new Uint32Array(t.buffer);
    for (let h = 0; h < 65536; h++) bits[h] = f16BitsToF32Bits(h);
    f16Table = t;
  }
  return f16Table;
}

/**
 * Decode `count` f16 values (default: all of `out`). A Uint16Array holds host-order bit patterns;
 * a Uint8Array holds little-endian bytes at any alignment.
 */
export function decodeF16(src: Uint16Array | Uint8Array, out: Float32Array, count = out.length): Float32Array {
  checkCount(src, count, out);
  const lut = getF16Table();
  if (src instanceof Uint16Array) {
    for (let i = 0; i < count; i++) out[i] = lut[src[i]!]!;
  } else {
    for (let i = 0, j = 0; i < count; i++, j += 2) out[i] = lut[src[j]! | (src[j + 1]! << 8)]!;
  }
  return out;
}

/** Decode bf16 values into `out` bit-exactly (NaN payloads kept). Same input conventions as decodeF16. */
export function decodeBF16(src: Uint16Array | Uint8Array, out: Float32Array, count = out.length): Float32Array {
  checkCount(src, count, out);
  const o = new Uint32Array(out.buffer, out.byteOffset, count);
  if (src instanceof Uint16Array) {
    for (let i = 0; i < count; i++) o[i] = src[i]! << 16;
  } else {
    for (let i = 0, j = 0; i < count; i++, j += 2) o[i] = ((src[j]! | (src[j + 1]! << 8)) << 16) >>> 0;
  }
  return out;
}

/** Encode f32 values as f16 bit patterns (RNE). Works on the f32 bits, so NaN payloads stay NaN. */
export function encodeF16(src: Float32Array, out: Uint16Array = new Uint16Array(src.length)): Uint16Array {
  if (out.length < src.length) throw new RangeError('encodeF16: output shorter than input');
  const bits = new Uint32Array(src.buffer, src.byteOffset, src.length);
  for (let i = 0; i < bits.length; i++) out[i] = f32BitsToF16Bits(bits[i]!);
  return out;
}

/** The values an f16 store of `src` reads back as (encodeF16 then decodeF16), in a new array. */
export function roundToF16(src: Float32Array): Float32Array {
  return decodeF16(encodeF16(src), new Float32Array(src.length));
}

/** Encode f32 values as bf16 bit patterns (RNE, NaN-safe). */
export function encodeBF16(src: Float32Array, out: Uint16Array = new Uint16Array(src.length)): Uint16Array {
  if (out.length < src.length) throw new RangeError('encodeBF16: output shorter than input');
  const bits = new Uint32Array(src.buffer, src.byteOffset, src.length);
  for (let i = 0; i < bits.length; i++) out[i] = f32BitsToBf16Bits(bits[i]!);
  return out;
}

function checkCount(src: Uint16Array | Uint8Array, count: number, out: Float32Array): void {
  const need = src instanceof Uint16Array ? count : count * 2;
  if (!Number.isSafeInteger(count) || count < 0 || src.length < need || out.length < count) {
    throw new RangeError(`decode: count ${count} exceeds input (${src.length}) or output (${out.length})`);
  }
}

/**
 * Decode `count` little-endian elements of `dtype` from `bytes` into a fresh Float32Array.
 * Integers convert to the nearest float32 (I64 beyond 2^53 loses precision, as any float would).
 * Unaligned input is fine: aligned fast paths are used when possible, otherwise bytes are copied.
 */
export function toFloat32(bytes: Uint8Array, dtype: StorageDtype, count: number): Float32Array {
  const size = STORAGE_DTYPES[dtype].bytes;
  if (!Number.isSafeInteger(count) || count < 0 || count * size > bytes.length) {
    throw new FormatError(
      'E_DTYPE_SIZE',
      `cannot decode ${count} ${dtype} values from ${bytes.length} bytes (need ${count * size})`,
    );
  }
  const out = new Float32Array(count);
  switch (dtype) {
    case 'F16':
      return decodeF16(bytes, out, count);
    case 'BF16':
      return decodeBF16(bytes, out, count);
    case 'U8':
      out.set(bytes.subarray(0, count));
      return out;
    case 'I8':
      out.set(new Int8Array(bytes.buffer, bytes.byteOffset, count));
      return out;
    case 'F32':
      if (HOST_LITTLE_ENDIAN) {
        // copy the bytes into the output (works at any source alignment, no intermediate array)
        new Uint8Array(out.buffer).set(bytes.subarray(0, count * 4));
        return out;
      }
      break;
    default:
      break;
  }
  // generic little-endian path (DataView handles any alignment and host order)
  const dv = new DataView(bytes.buffer, bytes.byteOffset, count * size);
  switch (dtype) {
    case 'F32':
      for (let i = 0; i < count; i++) out[i] = dv.getFloat32(i * 4, true);
      break;
    case 'F64':
      for (let i = 0; i < count; i++) out[i] = dv.getFloat64(i * 8, true);
      break;
    case 'I16':
      for (let i = 0; i < count; i++) out[i] = dv.getInt16(i * 2, true);
      break;
    case 'I32':
      for (let i = 0; i < count; i++) out[i] = dv.getInt32(i * 4, true);
      break;
    case 'I64':
      for (let i = 0; i < count; i++) out[i] = Number(dv.getBigInt64(i * 8, true));
      break;
  }
  return out;
}

/**
 * Encode float32 values as little-endian bytes of a float storage dtype (F32, F16, BF16, F64).
 * Integer dtypes need an explicit quantization scheme and are rejected.
 */
export function fromFloat32(values: Float32Array, dtype: StorageDtype): Uint8Array {
  const n = values.length;
  switch (dtype) {
    case 'F32': {
      const out = new Uint8Array(n * 4);
      if (HOST_LITTLE_ENDIAN) out.set(new Uint8Array(values.buffer, values.byteOffset, n * 4));
      else {
        const dv = new DataView(out.buffer);
        for (let i = 0; i < n; i++) dv.setFloat32(i * 4, values[i]!, true);
      }
      return out;
    }
    case 'F64': {
      const out = new Uint8Array(n * 8);
      const dv = new DataView(out.buffer);
      for (let i = 0; i < n; i++) dv.setFloat64(i * 8, values[i]!, true);
      return out;
    }
    case 'F16':
    case 'BF16': {
      const half = dtype === 'F16' ? encodeF16(values) : encodeBF16(values);
      const out = new Uint8Array(n * 2);
      for (let i = 0; i < n; i++) {
        out[2 * i] = half[i]! & 0xff;
        out[2 * i + 1] = half[i]! >>> 8;
      }
      return out;
    }
    default:
      throw new UnsupportedError('E_DTYPE', `cannot encode float32 values as ${dtype} without a quantization scheme`);
  }
}
