/**
 * edgeq's GGUF block codecs against golden blocks produced by llama.cpp's own code
 * (quantize_row_*_ref / dequantize_row_* in node-llama-cpp's libggml-base.so, scripts/ggml-golden/).
 * Bit-exact: the same bytes from the same floats, the same floats from the same bytes.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ggmlCodec, ggmlType } from '../../src/formats/gguf/tensor-types.js';

const DIR = path.resolve(__dirname, '../fixtures/gguf');
const read = (name: string): Uint8Array => new Uint8Array(fs.readFileSync(path.join(DIR, name)));
const readF32 = (name: string): Float32Array => {
  const b = read(name);
  return new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4);
};
const bitsOf = (x: Float32Array): Uint32Array => new Uint32Array(Float32Array.from(x).buffer);

/** Index of the first differing byte, or -1. */
function firstDiff(a: Uint8Array, b: Uint8Array): number {
  if (a.length !== b.length) return Math.min(a.length, b.length);
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return i;
  return -1;
}

describe.each(['q4_0', 'q8_0', 'q2_K', 'q3_K', 'q4_K', 'q6_K'])('%s vs llama.cpp', (name) => {
  const t = ggmlType(name);
  const codec = ggmlCodec(t);
  const input = readF32('input.f32');

  it('quantizes to the same bytes as quantize_row_*_ref', () => {
    const golden = read(`${name}.q`);
    const mine = codec.quantize(input);
    const at = firstDiff(mine, golden);
    expect(at, `first differing byte ${at} (block ${Math.floor(at / t.typeSize)}, byte ${at % t.typeSize})`).toBe(-1);
  });

  it('dequantizes its golden blocks to the same floats as dequantize_row_*', () => {
    const out = codec.dequantize(read(`${name}.q`), new Float32Array(input.length));
    expect(bitsOf(out)).toEqual(bitsOf(readF32(`${name}.deq.f32`)));
  });

  it('dequantizes random bytes to the same floats as dequantize_row_*', () => {
    const golden = readF32(`${name}.rand.deq.f32`);
    const out = codec.dequantize(read(`${name}.rand.q`), new Float32Array(golden.length));
    expect(bitsOf(out)).toEqual(bitsOf(golden));
  });
});

describe('float types', () => {
  it('F16 round-trips fp16-representable values and rounds others to nearest even', () => {
    const c = ggmlCodec(ggmlType('f16'));
    const x = Float32Array.from([0, -0, 1, -2.5, 65504, 1 + 2 ** -11, 1 + 3 * 2 ** -11, 6e-8]);
    const y = c.dequantize(c.quantize(x), new Float32Array(x.length));
    expect(Array.from(y)).toEqual([0, -0, 1, -2.5, 65504, 1, 1 + 2 ** -9, 2 ** -24 * 1]);
  });
  it('F32 is stored little-endian and decodes exactly', () => {
    const c = ggmlCodec(ggmlType('f32'));
    const x = Float32Array.from([1.5, -3.25e-20, Math.PI]);
    const b = c.quantize(x);
    expect(Array.from(b.slice(0, 4))).toEqual([0, 0, 0xc0, 0x3f]);
    expect(bitsOf(c.dequantize(b, new Float32Array(3)))).toEqual(bitsOf(x));
  });
});
