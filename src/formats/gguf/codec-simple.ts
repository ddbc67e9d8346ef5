/**
 * Reference codecs of the 32-weight block types and the float types, bit-exact to llama.cpp's
 * `quantize_row_q4_0_ref` / `quantize_row_q8_0_ref` and `dequantize_row_q4_0` / `dequantize_row_q8_0`.
 *
 *   Q4_0 (18 B / 32): { fp16 d; u8 qs[16] }  qs[j] = q[j] | q[j+16] << 4,  w = d·(q − 8),
 *                      d = (signed value of largest magnitude) / −8,  q = min(15, trunc(x/d + 8.5))
 *   Q8_0 (34 B / 32): { fp16 d; i8 qs[32] }  w = d·q,  d = amax/127,  q = roundf(x/d)
 */
import { f, fp16Bits, readHalf, roundHalfAway, writeHalf } from './float32.js';

export function quantizeQ4_0(x: Float32Array): Uint8Array {
  const nb = x.length / 32;
  const out = new Uint8Array(nb * 18);
  for (let i = 0; i < nb; i++) {
    const base = i * 32;
    let amax = 0;
    let max = 0;
    for (let j = 0; j < 32; j++) {
      const v = x[base + j]!;
      if (amax < Math.abs(v)) {
        amax = Math.abs(v);
        max = v;
      }
    }
    const d = f(max / -8);
    const id = d ? f(1 / d) : 0;
    const o = i * 18;
    writeHalf(out, o, fp16Bits(d));
    for (let j = 0; j < 16; j++) {
      const x0 = f(x[base + j]! * id);
      const x1 = f(x[base + 16 + j]! * id);
      const q0 = Math.min(15, Math.trunc(f(x0 + 8.5)) | 0);
      const q1 = Math.min(15, Math.trunc(f(x1 + 8.5)) | 0);
      out[o + 2 + j] = (q0 & 0xff) | ((q1 & 0xff) << 4);
    }
  }
  return out;
}

export function dequantizeQ4_0(b: Uint8Array, out: Float32Array): Float32Array {
  const nb = out.length / 32;
  for (let i = 0; i < nb; i++) {
    const o = i * 18;
    const d = readHalf(b, o);
    for (let j = 0; j < 16; j++) {
      const q = b[o + 2 + j]!;
      out[i * 32 + j] = ((q & 0x0f) - 8) * d;
      out[i * 32 + j + 16] = ((q >> 4) - 8) * d;
    }
  }
  return out;
}

export function quantizeQ8_0(x: Float32Array): Uint8Array {
  const nb = x.length / 32;
  const out = new Uint8Array(nb * 34);
  for (let i = 0; i < nb; i++) {
    const base = i * 32;
    let amax = 0;
    for (let j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(x[base + j]!));
    const d = f(amax / 127);
    const id = d ? f(1 / d) : 0;
    const o = i * 34;
    writeHalf(out, o, fp16Bits(d));
    for (let j = 0; j < 32; j++) out[o + 2 + j] = roundHalfAway(f(x[base + j]! * id)) & 0xff;
  }
  return out;
}

export function dequantizeQ8_0(b: Uint8Array, out: Float32Array): Float32Array {
  const nb = out.length / 32;
  for (let i = 0; i < nb; i++) {
    const o = i * 34;
    const d = readHalf(b, o);
    for (let j = 0; j < 32; j++) out[i * 32 + j] = ((b[o + 2 + j]! << 24) >> 24) * d;
  }
  return out;
}

export function encodeF32(x: Float32Array): Uint8Array {
  const out = new Uint8Array(x.length * 4);
  const dv = new DataView(out.buffer);
  for (let i = 0; i < x.length; i++) dv.setFloat32(i * 4, x[i]!, true);
  return out;
}

export function decodeF32(b: Uint8Array, out: Float32Array): Float32Array {
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  for (let i = 0; i < out.length; i++) out[i] = dv.getFloat32(i * 4, true);
  return out;
}

export function encodeF16(x: Float32Array): Uint8Array {
  const out = new Uint8Array(x.length * 2);
  for (let i = 0; i < x.length; i++) writeHalf(out, i * 2, fp16Bits(x[i]!));
  return out;
}

export function decodeF16(b: Uint8Array, out: Float32Array): Float32Array {
  for (let i = 0; i < out.length; i++) out[i] = readHalf(b, i * 2);
  return out;
}
