import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openAtomicFile, withAtomicFile, writeFileAtomic, writeFileAtomicAsync } from '../../src/core/atomic-write.js';
import { f16BitsToF32, f32ToF16Bits, f32ToBf16Bits, bf16BitsToF32 } from '../../src/core/dtype.js';
import { EdgeqError, FormatError, MissingFileError } from '../../src/core/errors.js';
import { SafetensorsCheckpoint } from '../../src/formats/safetensors/checkpoint.js';
import { SafetensorsFile } from '../../src/formats/safetensors/reader.js';
import { SafetensorsWriter, writeSafetensors, type TensorWithData } from '../../src/formats/safetensors/writer.js';
import { FIXTURE_MODELS } from '../helpers/fixtures.js';

let dir: string;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'edgeq-st-writer-'));
});
afterAll(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

/** A fresh empty sub-folder per test. */
function sub(name: string): string {
  const d = path.join(dir, name);
  fs.mkdirSync(d, { recursive: true });
  return d;
}

/** Names in a folder, temp files included (they start with '.'). */
const ls = (d: string) => fs.readdirSync(d).sort();

describe('writeSafetensors round trip', () => {
  it('writes every dtype, metadata, scalars and empty tensors; the reader gets the same bytes back', async () => {
    const d = sub('all-dtypes');
    const file = path.join(d, 'model.safetensors');
    const tensors: TensorWithData[] = [
      { name: 'f64', dtype: 'F64', shape: [2, 2], data: new Float64Array([1.25, -2, 1e300, -0]) },
      { name: 'f32', dtype: 'F32', shape: [3], data: new Float32Array([0.1, -7, 3.5]) },
      { name: 'f16.bits', dtype: 'F16', shape: [2], data: new Uint16Array([0x3c00, 0xc000]) },
      { name: 'f16.conv', dtype: 'F16', shape: [3], data: new Float32Array([0.1, 65520, -1e-8]) },
      { name: 'bf16.conv', dtype: 'BF16', shape: [2], data: new Float32Array([3.14159, -1e38]) },
      { name: 'i64', dtype: 'I64', shape: [2], data: new BigInt64Array([-5n, 2n ** 40n]) },
      { name: 'i32', dtype: 'I32', shape: [2], data: new Int32Array([-2147483648, 7]) },
      { name: 'i16', dtype: 'I16', shape: [1, 3], data: new Int16Array([-32768, 0, 32767]) },
      { name: 'i8', dtype: 'I8', shape: [2], data: new Int8Array([-128, 127]) }, // odd size: the next tensor is unaligned
      { name: 'u8', dtype: 'U8', shape: [], data: new Uint8Array([200]) },
      { name: 'empty', dtype: 'F32', shape: [0, 16], data: new Float32Array(0) },
      { name: 'after.unaligned', dtype: 'F32', shape: [2], data: new Float32Array([42, -42]) },
    ];
    await writeSafetensors(file, tensors, { quant: 'none', note: 'ünïcode ✓' });
    expect(ls(d)).toEqual(['model.safetensors']);

    const raw = fs.readFileSync(file);
    const n = Number(raw.readBigUInt64LE(0));
    expect((8 + n) % 8).toBe(0);
    const headerText = raw.subarray(8, 8 + n).toString('utf8');
    expect(headerText).toMatch(/^\{.*\} *$/);

    const f = await SafetensorsFile.open(file);
    try {
      expect({ ...f.metadata }).toEqual({ quant: 'none', note: 'ünïcode ✓' });
      expect([...f.tensors.keys()]).toEqual(tensors.map((t) => t.name));
      expect([...(await f.readF32('f64'))]).toEqual([1.25, -2, Infinity, -0]);
      expect([...(await f.readF32('f32'))]).toEqual([...new Float32Array([0.1, -7, 3.5])]);
      expect([...(await f.readF32('f16.bits'))]).toEqual([1, -2]);
      expect([...(await f.readF32('f16.conv'))]).toEqual([f16BitsToF32(f32ToF16Bits(0.1)), Infinity, -0]);
      expect([...(await f.readF32('bf16.conv'))]).toEqual([3.14159, -1e38].map((v) => bf16BitsToF32(f32ToBf16Bits(v))));
      expect([...(await f.readF32('i64'))]).toEqual([-5, 2 ** 40]);
      expect([...(await f.readF32('i32'))]).toEqual([-2147483648, 7]);
      expect([...(await f.readF32('i16'))]).toEqual([-32768, 0, 32767]);
      expect([...(await f.readF32('i8'))]).toEqual([-128, 127]);
      expect([...(await f.readF32('u8'))]).toEqual([200]);
      expect(f.info('u8').shape).toEqual([]);
      expect(f.info('empty')).toMatchObject({ shape: [0, 16], numel: 0, byteLength: 0 });
      expect((await f.readF32('empty')).length).toBe(0);
      expect(f.info('after.unaligned').byteOffset % 4).not.toBe(0);
      expect([...(await f.readF32('after.unaligned'))]).toEqual([42, -42]);
      const i64raw = await f.readRaw('i64');
      expect(new DataView(i64raw.buffer).getBigInt64(8, true)).toBe(2n ** 40n);
      // contiguous layout in declaration order, as the reference implementation requires
      let end = f.dataStart;
      for (const t of f.tensors.values()) {
        expect(t.byteOffset).toBe(end);
        end += t.byteLength;
      }
      expect(end).toBe(f.size);
    } finally {
      await f.close();
    }
  });

  it('rewrites a real fixture bit-exactly (same tensors, same bytes)', async () => {
    const src = await SafetensorsFile.open(path.join(FIXTURE_MODELS.brownLlama7m, 'model.safetensors'));
    const out = path.join(sub('rewrite'), 'copy.safetensors');
    try {
      const specs = [...src.tensors.values()].map((t) => ({ name: t.name, dtype: t.dtype, shape: t.shape }));
      const w = await SafetensorsWriter.create(out, specs, { metadata: src.metadata });
      for (const s of specs) await w.writeTensor(s.name, await src.readRaw(s.name));
      await w.finish();
      const copy = await SafetensorsFile.open(out);
      try {
        expect({ ...copy.metadata }).toEqual({ ...src.metadata });
        for (const s of specs) {
          expect(copy.info(s.name).shape).toEqual(s.shape);
          expect(Buffer.from(await copy.readRaw(s.name)).equals(Buffer.from(await src.readRaw(s.name)))).toBe(true);
        }
      } finally {
        await copy.close();
      }
    } finally {
      await src.close();
    }
  });

  it('streams a tensor in chunks and converts f32 chunks to f16', async () => {
    const file = path.join(sub('chunks'), 'c.safetensors');
    const w = await SafetensorsWriter.create(file, [
      { name: 'big', dtype: 'F16', shape: [4, 3] },
      { name: 'z', dtype: 'U8', shape: [0] },
      { name: 'tail', dtype: 'U8', shape: [2] },
    ]);
    expect(w.nextTensor).toBe('big');
    for (let row = 0; row < 4; row++) await w.writeTensor('big', new Float32Array([row, row + 0.5, -row]));
    expect(w.nextTensor).toBe('tail'); // the empty tensor needs no call
    await w.writeTensor('tail', new Uint8Array([1]));
    await w.writeTensor('tail', new Uint8Array([2]));
    expect(w.nextTensor).toBeUndefined();
    await w.finish();
    const f = await SafetensorsFile.open(file);
    expect([...(await f.readF32('big'))]).toEqual([0, 0.5, -0, 1, 1.5, -1, 2, 2.5, -2, 3, 3.5, -3]);
    expect([...(await f.readRaw('tail'))]).toEqual([1, 2]);
    await f.close();
  });
});

describe('writer errors and atomicity', () => {
  it('a writer that throws midway leaves neither the destination nor a temp file', async () => {
    const d = sub('atomic-throw');
    const file = path.join(d, 'model.safetensors');
    const err = await writeSafetensors(file, [
      { name: 'a', dtype: 'F32', shape: [2], data: new Float32Array([1, 2]) },
      { name: 'b', dtype: 'F32', shape: [2], data: new Float32Array([1, 2, 3]) }, // wrong size
    ]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EdgeqError);
    expect((err as EdgeqError).code).toBe('E_WRITER_SIZE');
    expect((err as EdgeqError).message).toMatch(/'b'/);
    expect(ls(d)).toEqual([]);
  });

  it('a failure in the caller between tensors (abort) leaves an existing destination untouched', async () => {
    const d = sub('atomic-abort');
    const file = path.join(d, 'model.safetensors');
    fs.writeFileSync(file, 'old contents');
    const w = await SafetensorsWriter.create(file, [
      { name: 'a', dtype: 'U8', shape: [1] },
      { name: 'b', dtype: 'U8', shape: [1] },
    ]);
    await w.writeTensor('a', new Uint8Array([1]));
    expect(ls(d).length).toBe(2); // destination + the temp file
    expect(ls(d).find((n) => n !== 'model.safetensors')).toMatch(/^\.model\.safetensors\.tmp-\d+-[0-9a-f]+$/);
    try {
      await (async () => {
        throw new Error('quantizer crashed');
      })();
    } catch {
      await w.abort();
    }
    expect(ls(d)).toEqual(['model.safetensors']);
    expect(fs.readFileSync(file, 'utf8')).toBe('old contents');
    await expect(w.writeTensor('b', new Uint8Array([2]))).rejects.toMatchObject({ code: 'E_WRITER_STATE' });
  });

  it('order, completeness and declaration errors are typed and clean up', async () => {
    const d = sub('errors');
    const file = path.join(d, 'x.safetensors');
    const specs = [
      { name: 'a', dtype: 'U8', shape: [2] },
      { name: 'b', dtype: 'U8', shape: [1] },
    ] as const;
    let w = await SafetensorsWriter.create(file, specs);
    await expect(w.writeTensor('b', new Uint8Array([1]))).rejects.toMatchObject({ code: 'E_WRITER_ORDER' });
    expect(ls(d)).toEqual([]);

    w = await SafetensorsWriter.create(file, specs);
    await w.writeTensor('a', new Uint8Array([1]));
    await expect(w.writeTensor('b', new Uint8Array([1]))).rejects.toThrow(/'a' is incomplete/);
    expect(ls(d)).toEqual([]);

    w = await SafetensorsWriter.create(file, specs);
    await w.writeTensor('a', new Uint8Array([1, 2]));
    await expect(w.finish()).rejects.toMatchObject({ code: 'E_WRITER_INCOMPLETE' });
    expect(ls(d)).toEqual([]);

    w = await SafetensorsWriter.create(file, specs);
    await expect(w.writeTensor('a', new Int32Array([1]))).rejects.toMatchObject({ code: 'E_TENSOR_DATA' });
    expect(ls(d)).toEqual([]);

    await expect(SafetensorsWriter.create(file, [...specs, { name: 'a', dtype: 'U8', shape: [1] }])).rejects.toMatchObject({
      code: 'E_DUPLICATE_TENSOR',
    });
    await expect(SafetensorsWriter.create(file, [{ name: 'q', dtype: 'Q4' as 'U8', shape: [1] }])).rejects.toMatchObject({ code: 'E_DTYPE' });
    await expect(SafetensorsWriter.create(file, [{ name: 'q', dtype: 'U8', shape: [-1] }])).rejects.toMatchObject({ code: 'E_SHAPE' });
    await expect(SafetensorsWriter.create(file, [{ name: '__metadata__', dtype: 'U8', shape: [1] }])).rejects.toMatchObject({
      code: 'E_TENSOR_NAME',
    });
    await expect(
      SafetensorsWriter.create(file, specs, { metadata: { n: 3 as unknown as string } }),
    ).rejects.toMatchObject({ code: 'E_METADATA' });
    expect(ls(d)).toEqual([]);
  });
});

describe('atomic-write helpers', () => {
  it('writeFileAtomic / writeFileAtomicAsync / withAtomicFile replace files whole', async () => {
    const d = sub('atomic-helpers');
    const p = path.join(d, 'a.json');
    writeFileAtomic(p, '{"v":1}');
    expect(fs.readFileSync(p, 'utf8')).toBe('{"v":1}');
    await writeFileAtomicAsync(p, new Uint8Array([50, 51]));
    expect(fs.readFileSync(p, 'utf8')).toBe('23');
    await expect(
      withAtomicFile(p, async (f) => {
        await f.write(new Uint8Array([1, 2, 3]));
        throw new Error('boom');
      }),
    ).rejects.toThrow('boom');
    expect(fs.readFileSync(p, 'utf8')).toBe('23');
    const f = await openAtomicFile(p);
    await f.write(new Uint8Array([0, 0, 0, 0]));
    await f.write(new Uint8Array([9]), 1); // positioned back-patch
    await f.commit();
    expect([...fs.readFileSync(p)]).toEqual([0, 9, 0, 0]);
    expect(ls(d)).toEqual(['a.json']);
    expect(() => writeFileAtomic(path.join(d, 'no-such-dir', 'x'), 'x')).toThrow();
    expect(ls(d)).toEqual(['a.json']);
  });
});

describe('SafetensorsCheckpoint (sharded)', () => {
  const shardA: TensorWithData[] = [
    { name: 'model.embed_tokens.weight', dtype: 'F32', shape: [2, 2], data: new Float32Array([1, 2, 3, 4]) },
    { name: 'model.norm.weight', dtype: 'F16', shape: [2], data: new Float32Array([0.5, -0.5]) },
  ];
  const shardB: TensorWithData[] = [{ name: 'lm_head.weight', dtype: 'BF16', shape: [2], data: new Float32Array([8, 9]) }];
  const A = 'model-00001-of-00002.safetensors';
  const B = 'model-00002-of-00002.safetensors';
  const indexFor = (map: Record<string, string>) => JSON.stringify({ metadata: { total_size: 28 }, weight_map: map });
  const goodMap = { 'model.embed_tokens.weight': A, 'model.norm.weight': A, 'lm_head.weight': B };

  async function shardedDir(name: string, map: Record<string, string> | null = goodMap): Promise<string> {
    const d = sub(name);
    await writeSafetensors(path.join(d, A), shardA, { format: 'pt', shard: '1' });
    await writeSafetensors(path.join(d, B), shardB, { format: 'pt', shard: '2' });
    if (map) writeFileAtomic(path.join(d, 'model.safetensors.index.json'), indexFor(map));
    return d;
  }

  it('reads tensors across shards via the index', async () => {
    const d = await shardedDir('sharded-ok');
    const ck = await SafetensorsCheckpoint.open(d);
    try {
      expect(ck.shards.map((s) => path.basename(s.path))).toEqual([A, B]);
      expect(ck.tensors.size).toBe(3);
      expect(ck.metadata['shard']).toBe('1');
      expect(ck.index?.metadata['total_size']).toBe(28);
      expect([...(await ck.readF32('model.embed_tokens.weight'))]).toEqual([1, 2, 3, 4]);
      expect([...(await ck.readF32('model.norm.weight', { checkFinite: true }))]).toEqual([0.5, -0.5]);
      expect([...(await ck.readF32('lm_head.weight'))]).toEqual([8, 9]);
      expect(path.basename(ck.info('lm_head.weight').file)).toBe(B);
      expect((await ck.readRaw('lm_head.weight')).length).toBe(4);
      await expect(ck.readF32('missing')).rejects.toMatchObject({ code: 'E_TENSOR_NOT_FOUND' });
    } finally {
      await ck.close();
    }
  });

  it('without an index, uses every *.safetensors in sorted order', async () => {
    const d = await shardedDir('sharded-noindex', null);
    const ck = await SafetensorsCheckpoint.open(d);
    expect(ck.tensors.size).toBe(3);
    expect(ck.metadata['shard']).toBe('1');
    await ck.close();
  });

  it('a missing shard is a MissingFileError naming the file', async () => {
    const d = await shardedDir('sharded-missing');
    fs.rmSync(path.join(d, B));
    const err = await SafetensorsCheckpoint.open(d).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MissingFileError);
    expect((err as MissingFileError).message).toContain(B);
  });

  it('an index that disagrees with the shards is a FormatError', async () => {
    const wrongShard = await shardedDir('sharded-wrong', { ...goodMap, 'lm_head.weight': A });
    const err = await SafetensorsCheckpoint.open(wrongShard).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FormatError);
    expect((err as FormatError).code).toBe('E_INDEX_MISMATCH');
    expect((err as FormatError).message).toMatch(/lm_head\.weight/);

    const ghost = await shardedDir('sharded-ghost', { ...goodMap, 'ghost.weight': B });
    await expect(SafetensorsCheckpoint.open(ghost)).rejects.toThrow(/'ghost\.weight'.*no shard contains it/);

    const escape = await shardedDir('sharded-escape', { ...goodMap, 'lm_head.weight': '../x.safetensors' });
    await expect(SafetensorsCheckpoint.open(escape)).rejects.toMatchObject({ code: 'E_INDEX' });

    const bad = sub('sharded-badjson');
    fs.writeFileSync(path.join(bad, 'model.safetensors.index.json'), '{"weight_map": [1]}');
    await expect(SafetensorsCheckpoint.open(bad)).rejects.toMatchObject({ code: 'E_INDEX' });
  });

  it('a tensor in two shards is an error', async () => {
    const d = await shardedDir('sharded-dup', null);
    await writeSafetensors(path.join(d, 'extra.safetensors'), [shardB[0]!]);
    const err = await SafetensorsCheckpoint.open(d).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'E_DUPLICATE_TENSOR' });
    expect((err as Error).message).toMatch(/lm_head\.weight/);
  });

  it('a folder without safetensors is a MissingFileError', async () => {
    const d = sub('empty-folder');
    fs.writeFileSync(path.join(d, 'pytorch_model.bin'), 'x');
    await expect(SafetensorsCheckpoint.open(d)).rejects.toMatchObject({ code: 'E_NO_WEIGHTS' });
  });
});
