/**
 * Fuzzing the safetensors reader with hostile inputs. Every case must either parse (and then every
 * tensor must read back consistently) or throw an EdgeqError subclass: never a TypeError, RangeError
 * or a hang, and no read request may ever be larger than the input.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { STORAGE_DTYPES } from '../../src/core/dtype.js';
import { EdgeqError } from '../../src/core/errors.js';
import { SafetensorsFile } from '../../src/formats/safetensors/reader.js';
import { writeSafetensors } from '../../src/formats/safetensors/writer.js';
import { MemoryByteSource, readStats, type ByteSource } from '../../src/store/byte-source.js';
import { FileByteSource } from '../../src/store/file-byte-source.js';
import { mulberry32, rawSafetensors } from '../helpers/safetensors-bytes.js';

type Json = Record<string, unknown>;

let dir: string;
let base: Uint8Array; // a valid file
let baseHeader: Json;
let baseData: Uint8Array;
let headerEnd: number;

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'edgeq-st-fuzz-'));
  const file = path.join(dir, 'base.safetensors');
  await writeSafetensors(
    file,
    [
      { name: 'emb', dtype: 'F16', shape: [4, 3], data: new Float32Array([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]) },
      { name: 'norm', dtype: 'F32', shape: [3], data: new Float32Array([0.5, 1, 1.5]) },
      { name: 'bf', dtype: 'BF16', shape: [2, 2], data: new Float32Array([1, -1, 2, -2]) },
      { name: 'q', dtype: 'I8', shape: [5], data: new Int8Array([1, -2, 3, -4, 5]) },
      { name: 'idx', dtype: 'I64', shape: [2], data: new BigInt64Array([3n, 4n]) },
      { name: 'e', dtype: 'F32', shape: [0], data: new Float32Array(0) },
      { name: 'd', dtype: 'F64', shape: [1], data: new Float64Array([2.5]) },
    ],
    { format: 'pt', k: 'v' },
  );
  base = new Uint8Array(fs.readFileSync(file));
  const n = Number(new DataView(base.buffer).getBigUint64(0, true));
  headerEnd = 8 + n;
  baseHeader = JSON.parse(new TextDecoder().decode(base.subarray(8, headerEnd))) as Json;
  baseData = base.slice(headerEnd);
});

afterAll(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

interface Tally {
  parsed: number;
  rejected: number;
  codes: Map<string, number>;
}
const newTally = (): Tally => ({ parsed: 0, rejected: 0, codes: new Map() });

/** Open, read every tensor, check invariants; only EdgeqErrors may escape (they are tallied). */
async function probe(bytes: Uint8Array, label: string, tally: Tally, source?: ByteSource): Promise<void> {
  readStats.reset();
  try {
    const f = await SafetensorsFile.fromSource(source ?? new MemoryByteSource(bytes, 'fuzz.safetensors'));
    try {
      for (const t of f.tensors.values()) {
        const size = STORAGE_DTYPES[t.dtype].bytes;
        if (t.byteOffset < f.dataStart || t.byteOffset + t.byteLength > bytes.length || t.byteLength !== t.numel * size) {
          expect.fail(`${label}: inconsistent tensor ${JSON.stringify(t)}`);
        }
        const raw = await f.readRaw(t.name);
        if (raw.length !== t.byteLength) expect.fail(`${label}: readRaw length`);
        const v = await f.readF32(t.name, { checkFinite: (t.numel & 1) === 1 });
        if (v.length !== t.numel) expect.fail(`${label}: readF32 length`);
      }
    } finally {
      await f.close();
    }
    tally.parsed++;
  } catch (err) {
    if (!(err instanceof EdgeqError)) {
      expect.fail(`${label}: threw a non-EdgeqError: ${err instanceof Error ? `${err.name}: ${err.message}` : String(err)}`);
    }
    tally.rejected++;
    tally.codes.set(err.code, (tally.codes.get(err.code) ?? 0) + 1);
  }
  if (readStats.largestRequest > bytes.length) {
    expect.fail(`${label}: a read of ${readStats.largestRequest} bytes was requested from ${bytes.length}`);
  }
}

/** Re-serialize a (mutated) header object in front of the original data region. */
function withHeader(h: Json | string, data = baseData): Uint8Array {
  return rawSafetensors(typeof h === 'string' ? h : JSON.stringify(h), data);
}

const clone = (h: Json): Json => JSON.parse(JSON.stringify(h)) as Json;

describe('safetensors fuzz', () => {
  it('the base file parses', async () => {
    const t = newTally();
    await probe(base, 'base', t);
    expect(t.parsed).toBe(1);
  });

  it('random bytes', async () => {
    const rnd = mulberry32(1);
    const t = newTally();
    for (let i = 0; i < 600; i++) {
      const len = rnd() % 300;
      const bytes = new Uint8Array(len).map(() => rnd() & 0xff);
      // half the time give it a plausible header length so parsing goes past the prefix
      if (len >= 8 && i % 2 === 0) new DataView(bytes.buffer).setBigUint64(0, BigInt(rnd() % (len - 7)), true);
      if (len >= 9 && i % 4 === 0) bytes[8] = 0x7b; // '{'
      await probe(bytes, `random#${i}`, t);
    }
    expect(t.rejected).toBeGreaterThan(500);
    expect(t.codes.has('E_HEADER_TOO_LARGE')).toBe(true);
    expect(t.codes.has('E_HEADER_JSON')).toBe(true);
  });

  it('every truncation of a valid file (in memory, and a sample through real files)', async () => {
    const t = newTally();
    for (let len = 0; len < base.length; len++) await probe(base.slice(0, len), `trunc@${len}`, t);
    expect(t.parsed).toBe(0);
    expect([...t.codes.keys()].sort()).toEqual(['E_HEADER_TOO_LARGE', 'E_OFFSET', 'E_TRUNCATED']);

    const onDisk = newTally();
    const p = path.join(dir, 'trunc.safetensors');
    for (let len = 0; len <= base.length; len += 7) {
      fs.writeFileSync(p, base.subarray(0, len));
      await probe(base.subarray(0, len), `file-trunc@${len}`, onDisk, await FileByteSource.open(p));
    }
    expect(onDisk.rejected).toBeGreaterThan(0);
  });

  it('mutated header bytes', async () => {
    const rnd = mulberry32(2);
    const interesting = [...'{}[]",:0123456789-.eE \\'].map((c) => c.charCodeAt(0));
    const t = newTally();
    for (let i = 0; i < 1500; i++) {
      const bytes = base.slice();
      const edits = 1 + (rnd() % 4);
      for (let k = 0; k < edits; k++) {
        const at = 8 + (rnd() % (headerEnd - 8));
        bytes[at] = rnd() % 3 === 0 ? rnd() & 0xff : interesting[rnd() % interesting.length]!;
      }
      await probe(bytes, `mutate#${i}`, t);
    }
    expect(t.rejected).toBeGreaterThan(0);
    expect(t.parsed).toBeGreaterThan(0); // e.g. edits inside names or metadata strings
  });

  it('absurd header lengths', async () => {
    const t = newTally();
    const n = BigInt(headerEnd - 8);
    const size = BigInt(base.length);
    const lengths = [0n, 1n, 2n ** 31n, 2n ** 32n, 2n ** 53n, 2n ** 53n + 1n, 2n ** 63n, 2n ** 64n - 1n, n - 1n, n + 1n, size - 8n, size - 7n, size, 100n * 2n ** 20n, 100n * 2n ** 20n + 1n];
    for (const len of lengths) {
      const bytes = base.slice();
      new DataView(bytes.buffer).setBigUint64(0, len, true);
      await probe(bytes, `hlen=${len}`, t);
    }
    expect(t.parsed).toBeLessThanOrEqual(1); // n - 1 only drops a padding space: still a valid file
    expect(t.codes.get('E_HEADER_TOO_LARGE')).toBeGreaterThanOrEqual(9);
  });

  it('structured header mutations: overlaps, wrong sizes, bad dims, bad offsets, bad dtypes', async () => {
    const rnd = mulberry32(3);
    const pick = <T,>(xs: readonly T[]): T => xs[rnd() % xs.length]!;
    const badNumbers = [-1, -0.5, 1.5, 2 ** 53, 2 ** 63, 1e308, -(2 ** 63), 0, 1, 3, '4', null, true, [], {}];
    const dtypes = [...Object.keys(STORAGE_DTYPES), 'F8_E4M3', 'BOOL', 'f16', '', 7, null];
    const names = Object.keys(baseHeader).filter((k) => k !== '__metadata__');
    const t = newTally();
    for (let i = 0; i < 1500; i++) {
      const h = clone(baseHeader);
      const mutations = 1 + (rnd() % 2);
      for (let m = 0; m < mutations; m++) {
        const name = pick(names);
        const e = h[name] as { dtype: unknown; shape: unknown[]; data_offsets: unknown[] };
        const other = h[pick(names)] as { data_offsets: number[] };
        // an earlier mutation may have broken these entries; only mutate well-formed ones
        const wellFormed = (x: unknown) =>
          typeof x === 'object' && x !== null && Array.isArray((x as Json)['shape']) && Array.isArray((x as Json)['data_offsets']);
        if (!wellFormed(e) || !wellFormed(other)) continue;
        switch (rnd() % 12) {
          case 0: // overlap with another tensor
            e.data_offsets = [...other.data_offsets];
            break;
          case 1: // shift by a few bytes (overlap or size mismatch)
            e.data_offsets = (e.data_offsets as number[]).map((x) => x + (rnd() % 5) - 2);
            break;
          case 2: // wrong dtype size
            e.dtype = pick(Object.keys(STORAGE_DTYPES));
            break;
          case 3:
            e.dtype = pick(dtypes);
            break;
          case 4: // negative / float / huge / non-number dim
            if (e.shape.length === 0) e.shape.push(1);
            e.shape[rnd() % e.shape.length] = pick(badNumbers);
            break;
          case 5: // rank explosion
            e.shape = new Array(1 + (rnd() % 12)).fill(1);
            break;
          case 6:
            e.data_offsets[rnd() % 2] = pick(badNumbers);
            break;
          case 7:
            e.data_offsets = (e.data_offsets as number[]).slice().reverse();
            break;
          case 8: // drop a field
            delete (e as Record<string, unknown>)[pick(['dtype', 'shape', 'data_offsets'])];
            break;
          case 9:
            h['__metadata__'] = pick([{ a: 1 }, ['x'], 'str', null, { ok: 'yes' }]);
            break;
          case 10: // replace the entry wholesale
            h[name] = pick([null, 1, 'x', [], { dtype: 'U8', shape: [base.length], data_offsets: [0, base.length] }]);
            break;
          default: // plausible re-shape that keeps numel (should parse)
            if (e.shape.length === 2) e.shape = [(e.shape[0] as number) * (e.shape[1] as number)];
            break;
        }
      }
      await probe(withHeader(h), `struct#${i}`, t);
    }
    for (const code of ['E_OVERLAP', 'E_DTYPE_SIZE', 'E_SHAPE', 'E_OFFSET', 'E_DTYPE', 'E_METADATA', 'E_HEADER_SCHEMA']) {
      expect(t.codes.get(code) ?? 0, code).toBeGreaterThan(0);
    }
    expect(t.parsed).toBeGreaterThan(0);
  });

  it('random data regions (NaN/Inf patterns) under checkFinite', async () => {
    const rnd = mulberry32(4);
    const t = newTally();
    for (let i = 0; i < 300; i++) {
      const data = baseData.map(() => (rnd() % 4 === 0 ? 0xff : rnd() & 0xff));
      await probe(withHeader(baseHeader, data), `data#${i}`, t);
    }
    expect(t.codes.get('E_NONFINITE_WEIGHT') ?? 0).toBeGreaterThan(0);
    expect(t.parsed).toBeGreaterThan(0);
  });
});
