import { describe, expect, it } from 'vitest';
import {
  STORAGE_DTYPES,
  bf16BitsToF32,
  bitsToF32,
  decodeBF16,
  decodeF16,
  dtypeBytes,
  encodeBF16,
  encodeF16,
  f16BitsToF32,
  f32BitsToBf16Bits,
  f32BitsToF16Bits,
  f32ToBf16Bits,
  f32ToBits,
  f32ToF16Bits,
  fromFloat32,
  getF16Table,
  isStorageDtype,
  toFloat32,
} from '../../src/core/dtype.js';
import { EdgeqError } from '../../src/core/errors.js';
import { mulberry32 } from '../helpers/safetensors-bytes.js';

/** Independent reference: binary16 value from the textbook formula (no bit tricks). */
function f16Formula(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * 2 ** (e - 15) * (1 + m / 1024);
}

/** Independent reference for bfloat16 (8-bit exponent, 7-bit mantissa). */
function bf16Formula(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 7) & 0xff;
  const m = h & 0x7f;
  if (e === 0) return s * m * 2 ** -133;
  if (e === 255) return m ? NaN : s * Infinity;
  return s * 2 ** (e - 127) * (1 + m / 128);
}

const isF16NaN = (h: number) => (h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0;

describe('f16', () => {
  it('decodes all 65536 bit patterns exactly like the formula', () => {
    for (let h = 0; h < 65536; h++) {
      const got = f16BitsToF32(h);
      const want = f16Formula(h);
      if (!Object.is(got, want)) expect.fail(`h=0x${h.toString(16)}: got ${got}, want ${want}`);
    }
  });

  it('bulk decode (table, Uint16Array and unaligned little-endian bytes) equals the scalar decode', () => {
    const lut = getF16Table();
    const all = new Uint16Array(65536).map((_, i) => i);
    const fromU16 = decodeF16(all, new Float32Array(65536));
    const bytes = new Uint8Array(1 + 2 * 65536).subarray(1); // odd byte offset
    for (let h = 0; h < 65536; h++) {
      bytes[2 * h] = h & 0xff;
      bytes[2 * h + 1] = h >> 8;
    }
    const fromBytes = decodeF16(bytes, new Float32Array(65536));
    for (let h = 0; h < 65536; h++) {
      const want = f16BitsToF32(h);
      if (!Object.is(lut[h], want) || !Object.is(fromU16[h], want) || !Object.is(fromBytes[h], want)) {
        expect.fail(`bulk mismatch at 0x${h.toString(16)}`);
      }
    }
  });

  it('round-trips every finite f16 through f32 (including -0 and subnormals)', () => {
    for (let h = 0; h < 65536; h++) {
      if ((h & 0x7c00) === 0x7c00) continue;
      const back = f32ToF16Bits(f16BitsToF32(h));
      if (back !== h) expect.fail(`0x${h.toString(16)} -> 0x${back.toString(16)}`);
    }
    expect(f32ToF16Bits(Infinity)).toBe(0x7c00);
    expect(f32ToF16Bits(-Infinity)).toBe(0xfc00);
  });

  it('keeps NaN a NaN (also NaNs whose payload lives only in the low f32 bits)', () => {
    expect(isF16NaN(f32ToF16Bits(NaN))).toBe(true);
    expect(isF16NaN(f32BitsToF16Bits(0x7f800001))).toBe(true);
    expect(isF16NaN(f32BitsToF16Bits(0xff800001))).toBe(true);
    const src = new Float32Array(new Uint32Array([0x7f800001, 0x7fc00000, 0xffffffff]).buffer);
    for (const h of encodeF16(src)) expect(isF16NaN(h)).toBe(true);
  });

  it('rounds midpoints to even and everything else to nearest, across the whole positive range', () => {
    for (let h = 0; h < 0x7c00; h++) {
      const a = f16Formula(h);
      const b = h + 1 === 0x7c00 ? 65536 : f16Formula(h + 1); // 65536: where the next binade would start
      const mid = (a + b) / 2; // exactly representable in f32 (12 significant bits)
      if (Math.fround(mid) !== mid) expect.fail(`midpoint ${mid} not exact in f32`);
      const even = (h & 1) === 0 ? h : h + 1;
      const tie = f32ToF16Bits(mid);
      if (tie !== even) expect.fail(`tie between 0x${h.toString(16)} and next: got 0x${tie.toString(16)}`);
      // one f32 ulp either side of the midpoint decides it
      const below = bitsToF32(f32ToBits(mid) - 1);
      const above = bitsToF32(f32ToBits(mid) + 1);
      if (f32ToF16Bits(below) !== h || f32ToF16Bits(above) !== h + 1) expect.fail(`near-tie at 0x${h.toString(16)}`);
      if (f32ToF16Bits(-mid) !== (even | 0x8000)) expect.fail(`negative tie at 0x${h.toString(16)}`);
    }
  });

  it('overflows to Inf exactly at 65520 and underflows to 0 below 2^-25', () => {
    expect(f32ToF16Bits(65504)).toBe(0x7bff);
    expect(f32ToF16Bits(65519.99)).toBe(0x7bff);
    expect(f32ToF16Bits(65520)).toBe(0x7c00);
    expect(f32ToF16Bits(1e10)).toBe(0x7c00);
    expect(f32ToF16Bits(-1e10)).toBe(0xfc00);
    expect(f32ToF16Bits(2 ** -25)).toBe(0); // tie between 0 and the smallest subnormal: even = 0
    expect(f32ToF16Bits(2 ** -25 * 1.0001)).toBe(1);
    expect(f32ToF16Bits(2 ** -24)).toBe(1);
    expect(f32ToF16Bits(-(2 ** -30))).toBe(0x8000);
    expect(f32ToF16Bits(2 ** -14 - 2 ** -25)).toBe(0x0400); // largest subnormal tie rounds up into the normals
  });

  it('matches a brute-force nearest-even search on random f32 inputs', () => {
    // sorted positive finite f16 values plus the virtual 65536 past the end
    const values: number[] = [];
    for (let h = 0; h < 0x7c00; h++) values.push(f16Formula(h));
    const rnd = mulberry32(1234);
    for (let i = 0; i < 100_000; i++) {
      // bias towards the f16 range: exponents around it, random mantissas
      const exp = 100 + (rnd() % 50);
      const u = ((rnd() & 0x80000000) | (exp << 23) | (rnd() & 0x7fffff)) >>> 0;
      const x = bitsToF32(u);
      const ax = Math.abs(x);
      let lo = 0;
      let hi = values.length - 1;
      let want: number;
      if (ax >= 65520) want = 0x7c00;
      else {
        while (lo < hi) {
          const mid = (lo + hi + 1) >> 1;
          if (values[mid]! <= ax) lo = mid;
          else hi = mid - 1;
        }
        const below = values[lo]!;
        const above = lo + 1 < values.length ? values[lo + 1]! : 65536;
        const dl = ax - below;
        const du = above - ax;
        want = dl < du ? lo : du < dl ? lo + 1 : lo % 2 === 0 ? lo : lo + 1;
      }
      if (x < 0) want |= 0x8000;
      const got = f32ToF16Bits(x);
      if (got !== want) expect.fail(`x=${x} (0x${u.toString(16)}): got 0x${got.toString(16)}, want 0x${want.toString(16)}`);
    }
  });
});

describe('bf16', () => {
  it('decodes all 65536 bit patterns like the formula, scalar and bulk', () => {
    const all = new Uint16Array(65536).map((_, i) => i);
    const bulk = decodeBF16(all, new Float32Array(65536));
    for (let h = 0; h < 65536; h++) {
      const want = bf16Formula(h);
      if (!Object.is(bf16BitsToF32(h), want) || !Object.is(bulk[h], want)) expect.fail(`bf16 0x${h.toString(16)}`);
    }
  });

  it('round-trips every finite bf16 and keeps NaN a NaN', () => {
    for (let h = 0; h < 65536; h++) {
      if ((h & 0x7f80) === 0x7f80) continue;
      if (f32ToBf16Bits(bf16BitsToF32(h)) !== h) expect.fail(`bf16 round trip 0x${h.toString(16)}`);
    }
    const nanBits = [0x7f800001, 0xff800001, 0x7fc00000, 0x7f80ffff];
    for (const u of nanBits) {
      const b = f32BitsToBf16Bits(u);
      expect((b & 0x7f80) === 0x7f80 && (b & 0x7f) !== 0).toBe(true);
    }
    const src = new Float32Array(new Uint32Array(nanBits).buffer);
    for (const b of encodeBF16(src)) expect((b & 0x7f80) === 0x7f80 && (b & 0x7f) !== 0).toBe(true);
  });

  it('rounds to nearest even on random f32 bit patterns (vs. distance comparison)', () => {
    const rnd = mulberry32(99);
    for (let i = 0; i < 100_000; i++) {
      let u = rnd();
      if ((u & 0x7f800000) === 0x7f800000) u &= 0xbfffffff; // keep it finite
      if (i % 10 === 0) u = (u & 0xffff0000) | 0x8000; // exact ties
      const x = bitsToF32(u);
      const lower = u >>> 16;
      const upper = lower + 1; // may be the virtual value past the largest finite (formula gives 2^128)
      const vl = Math.abs(bf16Formula(lower));
      const vu = (lower & 0x7fff) === 0x7f7f ? 2 ** 128 : Math.abs(bf16Formula(upper));
      const ax = Math.abs(x);
      const dl = ax - vl;
      const du = vu - ax;
      const want = dl < du ? lower : du < dl ? upper : (lower & 1) === 0 ? lower : upper;
      const got = f32ToBf16Bits(x);
      if (got !== (want & 0xffff)) expect.fail(`0x${u.toString(16)}: got 0x${got.toString(16)}, want 0x${want.toString(16)}`);
    }
    expect(f32BitsToBf16Bits(0x7f7fffff)).toBe(0x7f80); // rounds up to +Inf
  });
});

describe('storage dtypes and toFloat32', () => {
  it('has one table with sizes', () => {
    expect(Object.keys(STORAGE_DTYPES).sort()).toEqual(['BF16', 'F16', 'F32', 'F64', 'I16', 'I32', 'I64', 'I8', 'U8']);
    expect(dtypeBytes('BF16')).toBe(2);
    expect(dtypeBytes('I64')).toBe(8);
    expect(isStorageDtype('F32')).toBe(true);
    expect(isStorageDtype('toString')).toBe(false);
    expect(isStorageDtype('F8_E4M3')).toBe(false);
  });

  it('decodes every dtype from little-endian bytes at an odd offset', () => {
    const vals = [0, 1, -2, 100, -128];
    const cases: Array<[keyof typeof STORAGE_DTYPES, (dv: DataView, i: number, v: number) => void]> = [
      ['F64', (dv, i, v) => dv.setFloat64(i * 8, v, true)],
      ['F32', (dv, i, v) => dv.setFloat32(i * 4, v, true)],
      ['F16', (dv, i, v) => dv.setUint16(i * 2, f32ToF16Bits(v), true)],
      ['BF16', (dv, i, v) => dv.setUint16(i * 2, f32ToBf16Bits(v), true)],
      ['I64', (dv, i, v) => dv.setBigInt64(i * 8, BigInt(v), true)],
      ['I32', (dv, i, v) => dv.setInt32(i * 4, v, true)],
      ['I16', (dv, i, v) => dv.setInt16(i * 2, v, true)],
      ['I8', (dv, i, v) => dv.setInt8(i, v)],
      ['U8', (dv, i, v) => dv.setUint8(i, v & 0xff)],
    ];
    for (const [dtype, put] of cases) {
      const size = dtypeBytes(dtype);
      const buf = new Uint8Array(3 + size * vals.length).subarray(3);
      const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
      vals.forEach((v, i) => put(dv, i, v));
      const want = dtype === 'U8' ? vals.map((v) => v & 0xff) : vals;
      expect([...toFloat32(buf, dtype, vals.length)], dtype).toEqual(want);
    }
  });

  it('rejects a count larger than the bytes hold with a typed error', () => {
    expect(() => toFloat32(new Uint8Array(7), 'F32', 2)).toThrow(EdgeqError);
    expect(() => toFloat32(new Uint8Array(8), 'F32', -1)).toThrow(EdgeqError);
  });

  it('fromFloat32 encodes float dtypes and round-trips through toFloat32', () => {
    const v = new Float32Array([0, -0, 1.5, -65504, 3.140625, 1e-8]);
    for (const dtype of ['F32', 'F64', 'F16', 'BF16'] as const) {
      const bytes = fromFloat32(v, dtype);
      expect(bytes.length).toBe(v.length * dtypeBytes(dtype));
      const back = toFloat32(bytes, dtype, v.length);
      for (let i = 0; i < v.length; i++) {
        const want =
          dtype === 'F16' ? f16BitsToF32(f32ToF16Bits(v[i]!)) : dtype === 'BF16' ? bf16BitsToF32(f32ToBf16Bits(v[i]!)) : v[i]!;
        expect(Object.is(back[i], want), `${dtype}[${i}]`).toBe(true);
      }
    }
    expect(() => fromFloat32(v, 'I8')).toThrow(EdgeqError);
  });
});
