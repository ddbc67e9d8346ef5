import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EdgeqError, FormatError, MissingFileError, NonFiniteWeightError } from '../../src/core/errors.js';
import { SafetensorsCheckpoint } from '../../src/formats/safetensors/checkpoint.js';
import { SafetensorsFile } from '../../src/formats/safetensors/reader.js';
import { MemoryByteSource, ByteSource, readStats } from '../../src/store/byte-source.js';
import { FIXTURE_MODELS } from '../helpers/fixtures.js';
import { rawSafetensors } from '../helpers/safetensors-bytes.js';

const STORIES = path.join(FIXTURE_MODELS.stories260K, 'model.safetensors');
const BROWN = path.join(FIXTURE_MODELS.brownLlama7m, 'model.safetensors');

/** Independent header parse of a whole file read with fs (for cross-checking the reader). */
function independentTensor(file: string, name: string): { buf: Buffer; start: number; end: number } {
  const buf = fs.readFileSync(file);
  const n = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + n).toString('utf8')) as Record<string, { data_offsets: [number, number] }>;
  const [b, e] = header[name]!.data_offsets;
  return { buf, start: 8 + n + b, end: 8 + n + e };
}

/** binary16 by formula (no tables, no bit reinterpretation). */
function halfByFormula(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * 2 ** (e - 15) * (1 + m / 1024);
}

async function openBytes(bytes: Uint8Array): Promise<SafetensorsFile> {
  return SafetensorsFile.fromSource(new MemoryByteSource(bytes, 'test.safetensors'));
}

async function expectFormatError(bytes: Uint8Array, code: string, message?: RegExp): Promise<FormatError> {
  const err: unknown = await openBytes(bytes).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, `expected ${code}`).toBeInstanceOf(FormatError);
  const fe = err as FormatError;
  expect(fe.code, fe.message).toBe(code);
  if (message) expect(fe.message).toMatch(message);
  expect(fe.message).toContain('test.safetensors');
  return fe;
}

const f32 = (name: string, shape: number[], begin: number, end: number) => ({
  [name]: { dtype: 'F32', shape, data_offsets: [begin, end] },
});

describe('SafetensorsFile on the fixture models', () => {
  it('reads stories260K: 47 F32 tensors, shapes, metadata, data equal to an independent decode', async () => {
    readStats.reset();
    const f = await SafetensorsFile.open(STORIES);
    try {
      expect(f.tensors.size).toBe(47);
      expect(ByteSource.stats.largestRequest).toBe(f.headerLength); // opening reads only the header
      expect(f.headerLength).toBe(4944);
      expect(f.metadata['format']).toBe('pt');
      expect([...f.tensors.values()].every((t) => t.dtype === 'F32')).toBe(true);
      expect(f.tensors.has('lm_head.weight')).toBe(false); // tied embeddings
      const embed = f.info('model.embed_tokens.weight');
      expect(embed).toMatchObject({ shape: [512, 64], numel: 32768, byteLength: 131072, byteOffset: 8 + 4944, file: STORIES });
      expect(f.info('model.layers.4.mlp.down_proj.weight').shape).toEqual([64, 172]);
      expect(f.info('model.layers.0.self_attn.k_proj.weight').shape).toEqual([32, 64]);

      const name = 'model.layers.2.mlp.gate_proj.weight';
      const got = await f.readF32(name, { checkFinite: true });
      const { buf, start, end } = independentTensor(STORIES, name);
      expect(got.length).toBe((end - start) / 4);
      for (let i = 0; i < got.length; i++) {
        if (!Object.is(got[i], buf.readFloatLE(start + 4 * i))) expect.fail(`${name}[${i}]`);
      }
      const raw = await f.readRaw(name);
      expect(Buffer.from(raw).equals(buf.subarray(start, end))).toBe(true);
      for (const t of f.tensors.keys()) await f.readF32(t, { checkFinite: true });
      expect(readStats.largestRequest).toBeLessThanOrEqual(f.size);
    } finally {
      await f.close();
    }
  });

  it('reads brown-llama-7m: 57 F16 tensors; lm_head decodes like the formula', async () => {
    const f = await SafetensorsFile.open(BROWN);
    try {
      expect(f.tensors.size).toBe(57);
      expect([...f.tensors.values()].every((t) => t.dtype === 'F16')).toBe(true);
      expect(f.metadata).toEqual({ trained_steps: '500', trained_tokens: '2048000', source: 'brown-llama-7m' });
      expect(f.info('lm_head.weight').shape).toEqual([4096, 256]);
      expect(f.info('model.layers.5.mlp.gate_proj.weight').shape).toEqual([768, 256]);
      expect(f.info('model.norm.weight')).toMatchObject({ shape: [256], byteLength: 512 });

      const name = 'lm_head.weight';
      const got = await f.readF32(name, { checkFinite: true });
      const { buf, start } = independentTensor(BROWN, name);
      expect(got.length).toBe(4096 * 256);
      for (let i = 0; i < got.length; i++) {
        if (!Object.is(got[i], halfByFormula(buf.readUInt16LE(start + 2 * i)))) expect.fail(`${name}[${i}]`);
      }
      // element ranges agree with the full decode
      const part = await f.readF32Range(name, 256 * 10, 256 * 3);
      expect([...part]).toEqual([...got.subarray(2560, 2560 + 768)]);
    } finally {
      await f.close();
    }
  });

  it('opens a fixture folder as a single-file checkpoint', async () => {
    const ck = await SafetensorsCheckpoint.open(FIXTURE_MODELS.brownLlama7m);
    try {
      expect(ck.shards.length).toBe(1);
      expect(ck.tensors.size).toBe(57);
      expect(ck.metadata['source']).toBe('brown-llama-7m');
      const a = await ck.readF32('model.norm.weight');
      expect(a.length).toBe(256);
    } finally {
      await ck.close();
    }
  });
});

describe('SafetensorsFile validation', () => {
  it('accepts a space-padded header, scalars and empty tensors', async () => {
    const data = new Uint8Array(new Float32Array([1.5, -2]).buffer);
    const header = {
      __metadata__: { k: 'v' },
      ...f32('a', [2], 0, 8),
      scalar: { dtype: 'U8', shape: [], data_offsets: [8, 9] },
      empty: { dtype: 'F16', shape: [0, 7], data_offsets: [9, 9] },
    };
    const bytes = rawSafetensors(header, new Uint8Array([...data, 42]), { pad: 13 });
    const f = await openBytes(bytes);
    expect([...(await f.readF32('a'))]).toEqual([1.5, -2]);
    expect([...(await f.readF32('scalar'))]).toEqual([42]);
    expect(f.info('scalar').numel).toBe(1);
    expect((await f.readF32('empty')).length).toBe(0);
    expect({ ...f.metadata }).toEqual({ k: 'v' });
    await f.close();
  });

  it('rejects short files and bad header lengths', async () => {
    await expectFormatError(new Uint8Array(5), 'E_TRUNCATED');
    await expectFormatError(rawSafetensors({}, 0, { headerLength: 2n ** 53n }), 'E_HEADER_TOO_LARGE');
    await expectFormatError(rawSafetensors({}, 0, { headerLength: 2n ** 63n }), 'E_HEADER_TOO_LARGE');
    await expectFormatError(rawSafetensors({}, 0, { headerLength: 2n ** 64n - 1n }), 'E_HEADER_TOO_LARGE');
    await expectFormatError(rawSafetensors({}, 0, { headerLength: 100n * 1024n * 1024n + 1n }), 'E_HEADER_TOO_LARGE');
    await expectFormatError(rawSafetensors({}, 0, { headerLength: 3n }), 'E_HEADER_TOO_LARGE'); // 2 bytes present
  });

  it('rejects headers that are not a UTF-8 JSON object', async () => {
    await expectFormatError(rawSafetensors(new Uint8Array([0x7b, 0xff, 0xfe, 0x7d])), 'E_HEADER_JSON', /UTF-8/);
    await expectFormatError(rawSafetensors('{"a": '), 'E_HEADER_JSON', /JSON/);
    await expectFormatError(rawSafetensors('[]'), 'E_HEADER_JSON', /not an object/);
    await expectFormatError(rawSafetensors('null'), 'E_HEADER_JSON');
    await expectFormatError(rawSafetensors(''), 'E_HEADER_JSON');
    await expectFormatError(rawSafetensors({ w: 3 }), 'E_HEADER_SCHEMA', /'w'/);
  });

  it('rejects more than 100k tensors', async () => {
    const parts: string[] = [];
    for (let i = 0; i <= 100_000; i++) parts.push(`"t${i}":0`);
    await expectFormatError(rawSafetensors(`{${parts.join(',')}}`), 'E_TOO_MANY_TENSORS', /100001/);
  });

  it('rejects bad shapes naming the tensor', async () => {
    const shape = (s: unknown) => ({ w: { dtype: 'U8', shape: s, data_offsets: [0, 0] } });
    await expectFormatError(rawSafetensors(shape([1, 1, 1, 1, 1, 1, 1, 1, 1])), 'E_SHAPE', /'w'.*rank 9/);
    await expectFormatError(rawSafetensors(shape([-1])), 'E_SHAPE', /'w'.*-1/);
    await expectFormatError(rawSafetensors(shape([1.5])), 'E_SHAPE', /'w'.*1\.5/);
    await expectFormatError(rawSafetensors(shape(['3'])), 'E_SHAPE', /'w'/);
    await expectFormatError(rawSafetensors(shape([2 ** 53])), 'E_SHAPE', /'w'/);
    await expectFormatError(rawSafetensors('{"w":{"dtype":"U8","shape":[1e400],"data_offsets":[0,0]}}'), 'E_SHAPE');
    await expectFormatError(rawSafetensors(shape([2 ** 30, 2 ** 30, 2 ** 30])), 'E_SHAPE', /'w'.*overflow/);
    await expectFormatError(rawSafetensors(shape(null)), 'E_SHAPE', /'w'/);
  });

  it('rejects unknown dtypes', async () => {
    for (const dtype of ['F8_E4M3', 'f32', 42, null, undefined, 'toString', '__proto__']) {
      await expectFormatError(rawSafetensors({ w: { dtype, shape: [1], data_offsets: [0, 1] } }, 1), 'E_DTYPE', /'w'/);
    }
  });

  it('rejects bad data_offsets', async () => {
    const off = (o: unknown) => ({ w: { dtype: 'U8', shape: [4], data_offsets: o } });
    await expectFormatError(rawSafetensors(off([0]), 4), 'E_OFFSET', /'w'/);
    await expectFormatError(rawSafetensors(off([0, '4']), 4), 'E_OFFSET', /'w'/);
    await expectFormatError(rawSafetensors(off([-1, 3]), 4), 'E_OFFSET', /'w'/);
    await expectFormatError(rawSafetensors(off([4, 0]), 4), 'E_OFFSET', /'w'.*after end/);
    await expectFormatError(rawSafetensors(off([0, 4]), 3), 'E_OFFSET', /'w'.*truncated/);
    await expectFormatError(rawSafetensors(off([2 ** 63, 2 ** 63 + 4]), 4), 'E_OFFSET', /'w'/);
    await expectFormatError(rawSafetensors(off('0,4'), 4), 'E_OFFSET', /'w'/);
  });

  it('rejects a byte length that does not match shape × dtype', async () => {
    await expectFormatError(rawSafetensors(f32('w', [2], 0, 4), 8), 'E_DTYPE_SIZE', /'w'.*4 bytes.*8/);
    await expectFormatError(rawSafetensors(f32('w', [2], 0, 12), 12), 'E_DTYPE_SIZE', /'w'/);
  });

  it('rejects overlapping tensors, naming both', async () => {
    const header = { ...f32('a', [2], 0, 8), ...f32('b', [2], 4, 12) };
    await expectFormatError(rawSafetensors(header, 12), 'E_OVERLAP', /'b'.*'a'/);
    const nested = { ...f32('big', [4], 0, 16), ...f32('inner', [1], 4, 8), ...f32('tail', [2], 8, 16) };
    await expectFormatError(rawSafetensors(nested, 16), 'E_OVERLAP');
    // adjacency and gaps are fine, and so are empty tensors anywhere
    const ok = { ...f32('a', [2], 0, 8), ...f32('b', [1], 12, 16), ...f32('e', [0], 4, 4) };
    const f = await openBytes(rawSafetensors(ok, 16));
    expect(f.tensors.size).toBe(3);
  });

  it('rejects non-string metadata', async () => {
    await expectFormatError(rawSafetensors({ __metadata__: { a: 1 } }), 'E_METADATA', /'a'/);
    await expectFormatError(rawSafetensors({ __metadata__: ['x'] }), 'E_METADATA');
    await expectFormatError(rawSafetensors({ __metadata__: { a: null } }), 'E_METADATA');
  });

  it('metadata keys cannot pollute prototypes', async () => {
    const f = await openBytes(rawSafetensors('{"__metadata__":{"__proto__":"x","constructor":"y"}}'));
    expect(f.metadata['__proto__']).toBe('x');
    expect(f.metadata['constructor']).toBe('y');
    expect(({} as Record<string, unknown>)['x']).toBeUndefined();
  });

  it('reports NaN/Inf with the tensor name and flat index when asked to', async () => {
    const vals = new Float32Array([1, 2, NaN, Infinity]);
    const bytes = rawSafetensors(f32('w.bad', [4], 0, 16), new Uint8Array(vals.buffer));
    const f = await openBytes(bytes);
    const plain = await f.readF32('w.bad');
    expect(Number.isNaN(plain[2])).toBe(true);
    const err = await f.readF32('w.bad', { checkFinite: true }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NonFiniteWeightError);
    expect((err as NonFiniteWeightError).tensor).toBe('w.bad');
    expect((err as NonFiniteWeightError).index).toBe(2);
    expect((err as NonFiniteWeightError).message).toMatch(/w\.bad/);
    const err2 = await f.readF32Range('w.bad', 3, 1, { checkFinite: true }).catch((e: unknown) => e);
    expect((err2 as NonFiniteWeightError).index).toBe(3);
    expect((err2 as NonFiniteWeightError).value).toBe(Infinity);

    const half = rawSafetensors({ h: { dtype: 'F16', shape: [3], data_offsets: [0, 6] } }, new Uint8Array([0, 0x3c, 0, 0xfc, 0, 0]));
    const g = await openBytes(half);
    const err3 = await g.readF32('h', { checkFinite: true }).catch((e: unknown) => e);
    expect(err3).toMatchObject({ code: 'E_NONFINITE_WEIGHT', index: 1, value: -Infinity });
  });

  it('unknown tensor names are a typed error', async () => {
    const f = await openBytes(rawSafetensors(f32('a', [1], 0, 4), 4));
    await expect(f.readRaw('nope')).rejects.toMatchObject({ code: 'E_TENSOR_NOT_FOUND' });
    await expect(f.readF32('nope')).rejects.toBeInstanceOf(EdgeqError);
  });
});

describe('SafetensorsFile on disk', () => {
  let dir: string;
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'edgeq-st-reader-'));
  });
  afterAll(() => {
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('missing files are a MissingFileError', async () => {
    await expect(SafetensorsFile.open(path.join(dir, 'absent.safetensors'))).rejects.toBeInstanceOf(MissingFileError);
    await expect(SafetensorsCheckpoint.open(path.join(dir, 'absent-dir'))).rejects.toBeInstanceOf(MissingFileError);
  });

  it('a truncated copy of a fixture fails at open with a typed error', async () => {
    const bytes = fs.readFileSync(STORIES);
    const p = path.join(dir, 'truncated.safetensors');
    fs.writeFileSync(p, bytes.subarray(0, bytes.length - 100));
    await expect(SafetensorsFile.open(p)).rejects.toMatchObject({ code: 'E_OFFSET' });
    fs.writeFileSync(p, bytes.subarray(0, 3000));
    await expect(SafetensorsFile.open(p)).rejects.toMatchObject({ code: 'E_HEADER_TOO_LARGE' });
  });

  it('a file that shrinks after open gives E_TRUNCATED on read (short read)', async () => {
    const p = path.join(dir, 'shrinks.safetensors');
    fs.copyFileSync(STORIES, p);
    const f = await SafetensorsFile.open(p);
    try {
      fs.truncateSync(p, 200_000);
      await expect(f.readRaw('model.embed_tokens.weight')).resolves.toHaveLength(131072);
      await expect(f.readRaw('model.norm.weight')).rejects.toMatchObject({ code: 'E_TRUNCATED' });
    } finally {
      await f.close();
    }
  });

  it('a directory is not a safetensors file', async () => {
    await expect(SafetensorsFile.open(dir)).rejects.toMatchObject({ code: 'E_NOT_A_FILE' });
  });
});
