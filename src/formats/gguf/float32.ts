/**
 * Float32 arithmetic as C evaluates it, for codecs that must match llama.cpp bit for bit. JavaScript
 * computes in float64; one correctly rounded float64 operation on float32 operands followed by
 * Math.fround equals the float32 operation (+, −, ×, ÷, sqrt), so every intermediate is rounded with f().
 */
import { f16BitsToF32, f32ToF16Bits } from '../../core/dtype.js';

export const f = Math.fround;

const scratch = new Float32Array(1);
const scratchBits = new Int32Array(scratch.buffer);

/**
 * llama.cpp's `nearest_int`: add 1.5·2²³ in float32 and read the low mantissa bits — round half to even
 * for |v| ≤ 4194303, and the same bit pattern arithmetic (not a clamp) beyond, as the C code does.
 */
export function nearestInt(v: number): number {
  scratch[0] = v + 12582912;
  return (scratchBits[0]! & 0x007fffff) - 0x00400000;
}

/** C `roundf`: half away from zero. */
export function roundHalfAway(v: number): number {
  return v < 0 ? -Math.floor(-v + 0.5) : Math.floor(v + 0.5);
}

/** C conversion of an int to int8_t / uint8_t (two's-complement wrap). */
export function toInt8(v: number): number {
  return (v << 24) >> 24;
}

export function toUint8(v: number): number {
  return v & 0xff;
}

/** GGML_FP32_TO_FP16 (round to nearest even) as bits. */
export const fp16Bits = f32ToF16Bits;

/** GGML_FP16_TO_FP32 of the bits. */
export const fp16Value = f16BitsToF32;

/** The float32 value a float is stored as in an fp16 field. */
export function throughFp16(v: number): number {
  return f16BitsToF32(f32ToF16Bits(v));
}

export function readHalf(b: Uint8Array, off: number): number {
  return f16BitsToF32(b[off]! | (b[off + 1]! << 8));
}

export function writeHalf(b: Uint8Array, off: number, bits: number): void {
  b[off] = bits & 0xff;
  b[off + 1] = (bits >>> 8) & 0xff;
}
