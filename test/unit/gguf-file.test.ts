/**
 * GGUF writer and reader: round trip of metadata of every value type and tensors of every writable type,
 * cross-checked with node-llama-cpp's independent GGUF parser (readGgufFileInfo); the writer's state
 * machine; hostile inputs (truncation at every header length, fuzzed bytes) get FormatErrors, never crashes.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { readGgufFileInfo } from 'node-llama-cpp';
import { afterAll, describe, expect, it } from 'vitest';
import { EdgeqError, FormatError } from '../../src/core/errors.js';
import { NeedMoreBytes, parseGgufHeader } from '../../src/formats/gguf/header-parser.js';
import { gv } from '../../src/formats/gguf/metadata-values.js';
import { GgufFile } from '../../src/formats/gguf/reader.js';
import { ggmlCodec, ggmlType, WRITABLE_TYPES } from '../../src/formats/gguf/tensor-types.js';
import { GgufWriter } from '../../src/formats/gguf/writer.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'edgeq-gguf-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

function seeded(n: number, seed: number): Float32Array {
  let s = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = (s / 2 ** 32 - 0.5) * 0.1;
  }
  return out;
}

async function writeSample(file: string): Promise<Map<string, { dims: number[]; bytes: Uint8Array; type: string }>> {
  const w = new GgufWriter(file);
  w.setMetadata('general.architecture', gv.str('llama'))
    .setMetadata('test.u8', gv.u8(200))
    .setMetadata('test.i32', gv.i32(-5))
    .setMetadata('test.u32', gv.u32(4000000000))
    .setMetadata('test.u64', gv.u64(2n ** 40n))
    .setMetadata('test.f32', gv.f32(0.5))
    .setMetadata('test.bool', gv.bool(true))
    .setMetadata('test.str', gv.str('héllo ▁world'))
    .setMetadata('test.strings', gv.strings(['a', '', '<s>', '▁the']))
    .setMetadata('test.f32s', gv.f32s([1, -2.5, 0]))
    .setMetadata('test.i32s', gv.i32s([3, -1]));
  const tensors = new Map<string, { dims: number[]; bytes: Uint8Array; type: string }>();
  let seed = 1;
  for (const type of WRITABLE_TYPES) {
    const t = ggmlType(type);
    const dims = [t.blockSize === 256 ? 512 : 64, 3];
    const bytes = ggmlCodec(t).quantize(seeded(dims[0]! * dims[1]!, seed++));
    tensors.set(`t.${type}`, { dims, bytes, type });
    w.addTensor(`t.${type}`, dims, t);
  }
  tensors.set('norm', { dims: [7], bytes: ggmlCodec(ggmlType('f32')).quantize(seeded(7, 99)), type: 'f32' }); // odd size: padding
  w.addTensor('norm', [7], ggmlType('f32'));
  tensors.set('after', { dims: [32], bytes: ggmlCodec(ggmlType('q8_0')).quantize(seeded(32, 98)), type: 'q8_0' });
  w.addTensor('after', [32], ggmlType('q8_0'));
  await w.beginData();
  for (const [name, t] of tensors) await w.writeTensor(name, t.bytes);
  await w.finish();
  return tensors;
}

describe('GGUF writer/reader round trip', () => {
  const file = path.join(tmp, 'sample.gguf');
  let tensors: Awaited<ReturnType<typeof writeSample>>;

  it('writes a file the reader reads back exactly', async () => {
    tensors = await writeSample(file);
    const g = await GgufFile.open(file);
    try {
      expect(g.version).toBe(3);
      expect(g.get('general.architecture')).toBe('llama');
      expect(g.get('test.u8')).toBe(200);
      expect(g.get('test.i32')).toBe(-5);
      expect(g.get('test.u32')).toBe(4000000000);
      expect(g.get('test.u64')).toBe(2 ** 40);
      expect(g.get('test.bool')).toBe(true);
      expect(g.get('test.str')).toBe('héllo ▁world');
      expect(g.get('test.strings')).toEqual(['a', '', '<s>', '▁the']);
      expect(g.get('test.f32s')).toEqual([1, -2.5, 0]);
      expect(g.metadata.get('test.f32')?.type).toBe('f32');
      expect(g.dataOffset % 32).toBe(0);
      expect(g.tensors.map((t) => t.name)).toEqual([...tensors.keys()]);
      for (const t of g.tensors) {
        expect(t.offset % 32).toBe(0);
        const want = tensors.get(t.name)!;
        expect(t.dims).toEqual(want.dims);
        expect(t.type.name.toLowerCase()).toBe(want.type);
        expect(await g.readRaw(t.name)).toEqual(want.bytes);
      }
      expect(fs.statSync(file).size % 32).toBe(0);
    } finally {
      await g.close();
    }
  });

  it('agrees with node-llama-cpp\'s GGUF parser on metadata and tensor infos', async () => {
    const info = await readGgufFileInfo(file, { logWarnings: false, sourceType: 'filesystem' });
    const md = info.metadata as unknown as Record<string, Record<string, unknown>>;
    expect(md.general!.architecture).toBe('llama');
    expect(md.test!.str).toBe('héllo ▁world');
    expect(md.test!.strings).toEqual(['a', '', '<s>', '▁the']);
    expect(Number(md.test!.u64)).toBe(2 ** 40);
    const g = await GgufFile.open(file);
    try {
      expect(info.tensorInfo!.map((t) => t.name)).toEqual(g.tensors.map((t) => t.name));
      for (const t of info.tensorInfo!) {
        const mine = g.tensor(t.name);
        expect(t.dimensions.map(Number)).toEqual(mine.dims);
        expect(t.ggmlType).toBe(mine.type.id);
        expect(Number(t.fileOffset)).toBe(g.dataOffset + mine.offset);
      }
    } finally {
      await g.close();
    }
  });

  it('decodes tensors with the codecs', async () => {
    const g = await GgufFile.open(file);
    try {
      const x = await g.readF32('t.q8_0');
      expect(x.length).toBe(64 * 3);
      const want = seeded(64 * 3, WRITABLE_TYPES.indexOf('q8_0') + 1);
      const maxErr = Math.max(...Array.from(x, (v, i) => Math.abs(v - want[i]!)));
      expect(maxErr).toBeLessThan(0.05 / 127 + 1e-6);
      expect(Array.from(await g.readF32('t.f32'))).toEqual(Array.from(seeded(64 * 3, 1)));
    } finally {
      await g.close();
    }
  });

  it('enforces the state machine and sizes', async () => {
    const w = new GgufWriter(path.join(tmp, 'sm.gguf'));
    w.addTensor('a', [32], ggmlType('f32'));
    expect(() => w.setMetadata('k', gv.u32(1))).toThrow(EdgeqError);
    expect(() => w.addTensor('a', [32], ggmlType('f32'))).toThrow(/twice/);
    expect(() => w.addTensor('b', [100], ggmlType('q4_k'))).toThrow(/block size/);
    await w.beginData();
    await expect(w.writeTensor('b', new Uint8Array(128))).rejects.toThrow(/expected 'a'/);
    await expect(w.writeTensor('a', new Uint8Array(4))).rejects.toThrow(FormatError);
    await expect(w.finish()).rejects.toThrow(/not written/);
    await w.abort();
    expect(fs.readdirSync(tmp).filter((n) => n.includes('sm.gguf'))).toEqual([]);
  });
});

describe('hostile GGUF inputs', () => {
  const file = path.join(tmp, 'hostile-src.gguf');

  it('every truncation of the header or data is a FormatError', async () => {
    await writeSample(file);
    const bytes = new Uint8Array(fs.readFileSync(file));
    const header = parseGgufHeader(bytes, bytes.length);
    const lengths = new Set<number>();
    for (let n = 0; n <= header.dataOffset; n++) lengths.add(n);
    for (let n = header.dataOffset; n < bytes.length; n += 97) lengths.add(n);
    for (const n of lengths) {
      expect(() => parseGgufHeader(bytes.subarray(0, n), n), `prefix ${n}`).toThrow(FormatError);
    }
  });

  it('a prefix of a longer file asks for more bytes instead of failing', () => {
    const bytes = new Uint8Array(fs.readFileSync(file));
    expect(() => parseGgufHeader(bytes.subarray(0, 100), bytes.length)).toThrow(NeedMoreBytes);
  });

  it('fuzzed bytes give FormatErrors or a valid parse, never other exceptions', () => {
    const bytes = new Uint8Array(fs.readFileSync(file));
    const header = parseGgufHeader(bytes, bytes.length);
    let s = 12345;
    const rnd = (n: number): number => {
      s = (Math.imul(s, 1103515245) + 12345) >>> 0;
      return s % n;
    };
    let errors = 0;
    for (let trial = 0; trial < 1500; trial++) {
      const b = bytes.slice();
      const flips = 1 + rnd(4);
      for (let k = 0; k < flips; k++) {
        const at = rnd(header.dataOffset);
        b[at] = trial % 3 === 0 ? 0xff : rnd(256);
      }
      try {
        parseGgufHeader(b, b.length);
      } catch (e) {
        expect(e, `trial ${trial}`).toBeInstanceOf(FormatError);
        errors++;
      }
    }
    expect(errors).toBeGreaterThan(100);
  });

  it('rejects wrong magic, version and oversized counts with codes', async () => {
    const bytes = new Uint8Array(fs.readFileSync(file));
    const bad = (mut: (b: Uint8Array, dv: DataView) => void): unknown => {
      const b = bytes.slice();
      mut(b, new DataView(b.buffer));
      try {
        parseGgufHeader(b, b.length);
      } catch (e) {
        return (e as FormatError).code;
      }
      return 'ok';
    };
    expect(bad((b) => (b[0] = 0))).toBe('E_GGUF_MAGIC');
    expect(bad((_, dv) => dv.setUint32(4, 9, true))).toBe('E_GGUF_VERSION');
    expect(bad((_, dv) => dv.setBigUint64(8, 2n ** 62n, true))).toBe('E_GGUF_RANGE');
    expect(bad((_, dv) => dv.setBigUint64(16, 1n << 30n, true))).toBe('E_GGUF_LIMIT');
    fs.writeFileSync(path.join(tmp, 'empty.gguf'), new Uint8Array(0));
    await expect(GgufFile.open(path.join(tmp, 'empty.gguf'))).rejects.toThrow(FormatError);
  });
});
