/**
 * Deterministic calibration samples: N rows of T token ids cut from a calibration text at seeded random
 * offsets (random segments, as in the GPTQ reference).
 *
 *  - The whole text is tokenized once without special tokens (eval/dataset.ts tokenizeText: cached on
 *    disk by sha256(tokenizer.json, text)).
 *  - Rows: with addBos (default, and only when the tokenizer has a BOS) each row is BOS + T−1 text
 *    tokens — the shape every window has under edgeq's perplexity protocol, so the quantizer sees the
 *    activations the model sees in use, including the BOS attention sink. Otherwise T text tokens.
 *  - Offsets: with L text tokens and m per row, if N·m ≤ L the N windows are random and non-overlapping
 *    (N sorted uniform draws g_i from [0, L − N·m], offset_i = g_i + i·m); otherwise each offset is
 *    uniform on [0, L − m] independently, windows overlap, and a warning says so. Rows are in text order.
 *  - The PRNG is mulberry32 (prng.ts): the same (text, tokenizer, N, T, seed, addBos) always gives the
 *    same ids, on every platform. `sha256` is of the ids as little-endian int32, row-major.
 *  - The sample is cached too (`<cache>/calib/<key>.bin`, key = sha256 of all those inputs), so a second
 *    call is a file read; entries carry their own digest and a damaged one is recomputed.
 */
import { createHash } from 'node:crypto';
import { cacheFilePath, readCacheFile, writeCacheFile } from '../core/disk-cache.js';
import { UsageError } from '../core/errors.js';
import { tokenizeText } from '../eval/dataset.js';
import type { EdgeqTokenizer } from '../tokenizer/tokenizer.js';
import type { CalibrationText } from './calibration.js';
import { assertSeed, mulberry32 } from './prng.js';

export interface SampleOptions {
  /** Rows N (≥ 1). */
  samples: number;
  /** Tokens per row T (≥ 2), BOS included when addBos. */
  seqLen: number;
  /** PRNG seed, an integer in [0, 2^32 − 1]. */
  seed: number;
  /** BOS + T−1 text tokens per row (default true; ignored, with a warning, if the tokenizer has no BOS). */
  addBos?: boolean;
  /** Use the on-disk caches (default true). */
  cache?: boolean;
}

export interface CalibrationSample {
  /** (n, seqLen) row-major. */
  ids: Int32Array;
  n: number;
  seqLen: number;
  seed: number;
  /** Whether rows start with BOS (requested and the tokenizer has one). */
  addBos: boolean;
  /** Token offset into the tokenized text of each row's first text token. */
  offsets: number[];
  /** Tokens in the whole calibration text. */
  textTokens: number;
  /** sha256 (hex) of `ids` as little-endian int32. */
  sha256: string;
  source: { name: string; sha256: string };
  fromCache: boolean;
  warnings: string[];
}

/** Bumped whenever the sampling algorithm changes (part of the cache key). */
const SAMPLER_VERSION = 1;
const MAX_SAMPLE_TOKENS = 2 ** 27;
const MAGIC = 0x53435145; // 'EQCS' little-endian
const HEADER_BYTES = 24 + 32;
const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

export function sampleCalibration(tok: EdgeqTokenizer, cal: CalibrationText, opts: SampleOptions): CalibrationSample {
  const { samples: n, seqLen: T, seed } = opts;
  if (!Number.isInteger(n) || n < 1) throw new UsageError('E_CALIB_SAMPLES', `samples must be a positive integer (got ${n})`, 'e.g. --calib-samples 128');
  if (!Number.isInteger(T) || T < 2) throw new UsageError('E_CALIB_SEQLEN', `seqLen must be an integer ≥ 2 (got ${T})`, "e.g. --calib-seq-len 2048, or the model's context length");
  if (n * T > MAX_SAMPLE_TOKENS)
    throw new UsageError('E_CALIB_TOO_LARGE', `samples × seqLen = ${n * T} tokens exceeds the limit of ${MAX_SAMPLE_TOKENS}`, 'use fewer samples or a shorter seq-len');
  assertSeed(seed);
  const useCache = opts.cache ?? true;
  const wantBos = opts.addBos ?? true;
  const addBos = wantBos && tok.bosId !== null;
  const perRow = addBos ? T - 1 : T;
  const textSha = createHash('sha256').update(cal.text, 'utf8').digest('hex');
  const source = { name: cal.name, sha256: textSha };
  const baseWarnings = wantBos && !addBos ? [`the tokenizer has no BOS token: each row is ${T} text tokens`] : [];
  const warningsFor = (L: number): string[] =>
    n * perRow > L
      ? [
          ...baseWarnings,
          `the calibration text has ${L} tokens, fewer than ${n} samples × ${perRow} = ${n * perRow}: the windows overlap, so some text counts more than once; use more text or fewer/shorter samples`,
        ]
      : baseWarnings;

  const key = createHash('sha256')
    .update(JSON.stringify({ v: SAMPLER_VERSION, tokenizer: tok.fingerprint, bos: tok.bosId, text: textSha, n, T, seed, addBos }))
    .digest('hex');
  const file = cacheFilePath('calib', `${key}.bin`);
  if (useCache) {
    const hit = readSampleFile(file, n, T);
    if (hit) return { ...hit, n, seqLen: T, seed, addBos, source, fromCache: true, warnings: warningsFor(hit.textTokens) };
  }

  const tokens = tokenizeText(tok, cal.text, useCache).ids;
  const L = tokens.length;
  if (L < perRow)
    throw new UsageError(
      'E_CALIB_TOO_SHORT',
      `calibration text '${cal.name}' has ${L} tokens, fewer than one sample of ${perRow}${addBos ? ` (seqLen ${T} minus BOS)` : ''}`,
      'use a longer calibration text (e.g. the bundled set: --calib brown) or a smaller seq-len',
    );
  const offsets = chooseOffsets(mulberry32(seed), L, n, perRow);
  const ids = new Int32Array(n * T);
  for (let r = 0; r < n; r++) {
    let p = r * T;
    if (addBos) ids[p++] = tok.bosId!;
    ids.set(tokens.subarray(offsets[r], offsets[r] + perRow), p);
  }
  const idBytes = int32ToLE(ids);
  const digest = createHash('sha256').update(idBytes).digest();
  if (useCache) writeCacheFile(file, encodeSampleFile(n, T, L, addBos, digest, offsets, idBytes));
  return { ids, n, seqLen: T, seed, addBos, offsets, textTokens: L, sha256: digest.toString('hex'), source, fromCache: false, warnings: warningsFor(L) };
}

/** Start offsets of n windows of m tokens in a stream of L ≥ m tokens (see the file comment). */
export function chooseOffsets(rng: { nextInt(bound: number): number }, L: number, n: number, m: number): number[] {
  const offsets: number[] = [];
  if (n * m <= L) {
    const slack = L - n * m;
    for (let i = 0; i < n; i++) offsets.push(rng.nextInt(slack + 1));
    offsets.sort((a, b) => a - b);
    for (let i = 0; i < n; i++) offsets[i] += i * m;
  } else {
    for (let i = 0; i < n; i++) offsets.push(rng.nextInt(L - m + 1));
  }
  return offsets;
}

// Cache entry: magic u32, version u32, n u32, T u32, textTokens u32, flags u32 (bit 0: BOS), sha256 of
// the ids (32 bytes), n u32 offsets, n·T int32 ids; all little-endian.

function encodeSampleFile(n: number, T: number, L: number, addBos: boolean, digest: Uint8Array, offsets: number[], idBytes: Uint8Array): Uint8Array {
  const out = new Uint8Array(HEADER_BYTES + 4 * n + idBytes.byteLength);
  const dv = new DataView(out.buffer);
  [MAGIC, SAMPLER_VERSION, n, T, L, addBos ? 1 : 0].forEach((v, i) => dv.setUint32(4 * i, v, true));
  out.set(digest, 24);
  offsets.forEach((o, i) => dv.setUint32(HEADER_BYTES + 4 * i, o, true));
  out.set(idBytes, HEADER_BYTES + 4 * n);
  return out;
}

function readSampleFile(file: string, n: number, T: number): { ids: Int32Array; offsets: number[]; textTokens: number; sha256: string } | null {
  const bytes = readCacheFile(file);
  if (!bytes || bytes.byteLength !== HEADER_BYTES + 4 * n + 4 * n * T) return null;
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const u32 = (i: number): number => dv.getUint32(4 * i, true);
  if (u32(0) !== MAGIC || u32(1) !== SAMPLER_VERSION || u32(2) !== n || u32(3) !== T) return null;
  const idBytes = bytes.subarray(HEADER_BYTES + 4 * n);
  const sha256 = createHash('sha256').update(idBytes).digest('hex');
  if (sha256 !== Buffer.from(bytes.subarray(24, 56)).toString('hex')) return null;
  const offsets = Array.from({ length: n }, (_, i) => dv.getUint32(HEADER_BYTES + 4 * i, true));
  return { ids: int32FromLE(idBytes), offsets, textTokens: u32(4), sha256 };
}

function int32ToLE(ids: Int32Array): Uint8Array {
  if (LITTLE_ENDIAN) return new Uint8Array(ids.buffer, ids.byteOffset, ids.byteLength);
  const out = new Uint8Array(ids.byteLength);
  const dv = new DataView(out.buffer);
  ids.forEach((v, i) => dv.setInt32(4 * i, v, true));
  return out;
}

function int32FromLE(bytes: Uint8Array): Int32Array {
  const out = new Int32Array(bytes.byteLength / 4);
  if (LITTLE_ENDIAN) new Uint8Array(out.buffer).set(bytes);
  else {
    const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    for (let i = 0; i < out.length; i++) out[i] = dv.getInt32(4 * i, true);
  }
  return out;
}
