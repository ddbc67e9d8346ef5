import { createHash } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { BUNDLED_CALIBRATION, loadCalibrationText, sampleCalibration, type CalibrationText } from '../../src/calib/calibration.js';
import { mulberry32 } from '../../src/calib/prng.js';
import { chooseOffsets } from '../../src/calib/sample.js';
import { EdgeqError, FormatError, MissingFileError, UsageError } from '../../src/core/errors.js';
import { EdgeqTokenizer } from '../../src/tokenizer/tokenizer.js';
import { FIXTURE_MODELS, REPO_ROOT } from '../helpers/fixtures.js';

/** calibration/SOURCES.md records the same digest. */
const BROWN_SAMPLE_SHA256 = '54e742bdbcf01c9f252d5d13915ad8a968a3f0bda8ac2471ed9cead993b56798';
const VOCAB = 4096;
const BOS = 1;

let cacheDir: string;
let work: string;
let savedCache: string | undefined;
let tok: EdgeqTokenizer;
/** ~20 KB of the bundled text: thousands of tokens, tokenized in well under a second. */
let small: CalibrationText;
let smallTokens: number[];

const writeFile = (name: string, data: string | Uint8Array): string => {
  const file = path.join(work, name);
  fs.writeFileSync(file, data);
  return file;
};
const sha = (s: string | Uint8Array): string => createHash('sha256').update(s).digest('hex');
const caught = (fn: () => unknown): Error => {
  try {
    fn();
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected an error');
};

beforeAll(() => {
  savedCache = process.env.EDGEQ_CACHE;
  cacheDir = fs.mkdtempSync(path.join(os.tmpdir(), 'edgeq-calib-cache-'));
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'edgeq-calib-files-'));
  process.env.EDGEQ_CACHE = cacheDir;
  tok = EdgeqTokenizer.load(FIXTURE_MODELS.brownLlama7m);
  const text = fs.readFileSync(BUNDLED_CALIBRATION.brown, 'utf8').slice(0, 20_000);
  small = loadCalibrationText(writeFile('small.txt', text));
  smallTokens = tok.encode(small.text);
});

afterAll(() => {
  if (savedCache === undefined) delete process.env.EDGEQ_CACHE;
  else process.env.EDGEQ_CACHE = savedCache;
  fs.rmSync(cacheDir, { recursive: true, force: true });
  fs.rmSync(work, { recursive: true, force: true });
});

describe('loadCalibrationText', () => {
  it('loads the bundled Brown sample by default, from inside the repository', () => {
    const cal = loadCalibrationText();
    expect(cal).toMatchObject({ name: 'brown', kind: 'bundled', sha256: BROWN_SAMPLE_SHA256 });
    expect(BUNDLED_CALIBRATION.brown).toBe(path.join(REPO_ROOT, 'calibration/brown-sample.txt'));
    expect(sha(fs.readFileSync(BUNDLED_CALIBRATION.brown))).toBe(BROWN_SAMPLE_SHA256);
    expect(cal.text.length).toBeGreaterThan(300_000);
    expect(loadCalibrationText('brown').sha256).toBe(BROWN_SAMPLE_SHA256);
  });

  it('reads plain text with CRLF → LF and a UTF-8 BOM dropped; sha256 is of the normalised text', () => {
    const lf = 'The first line of calibration text, long enough to pass the minimum.\nA second line, with “curly quotes” and é.\n';
    const file = writeFile('crlf.txt', Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(lf.replace(/\n/g, '\r\n'))]));
    const cal = loadCalibrationText(file);
    expect(cal).toEqual({ name: 'crlf.txt', kind: 'text', text: lf, sha256: sha(lf) });
  });

  it('parses JSONL: a string `text` per line, blank lines skipped, records joined by a blank line', () => {
    const a = 'First record of the calibration set, which is a JSON Lines file.';
    const b = 'Second record,\nwith an embedded newline and a \u00e9 character, plus more words.';
    const lines = [JSON.stringify({ text: a, id: 1 }), '', '   ', JSON.stringify({ meta: { x: 1 }, text: b.replace('\n', '\r\n') })];
    const cal = loadCalibrationText(writeFile('set.JSONL', lines.join('\r\n') + '\r\n'));
    expect(cal.kind).toBe('jsonl');
    expect(cal.name).toBe('set.JSONL');
    expect(cal.text).toBe(`${a}\n\n${b}`);
    expect(cal.sha256).toBe(sha(cal.text));
  });

  it('names the offending line of a bad JSONL file', () => {
    const good = JSON.stringify({ text: 'x'.repeat(200) });
    const cases: [string[], number, RegExp][] = [
      [[good, good, '{"text": "unterminated'], 3, /not valid JSON/],
      [[good, '{"content": "no text field"}'], 2, /no "text" field/],
      [['', good, '{"text": 42}'], 3, /"text" is number, not a string/],
      [[good, '{"text": null}'], 2, /"text" is null/],
      [['["text"]'], 1, /expected a JSON object, got an array/],
      [[good, '"just a string"'], 2, /expected a JSON object, got string/],
    ];
    for (const [lines, lineNo, what] of cases) {
      const file = writeFile('bad.jsonl', lines.join('\n'));
      const err = caught(() => loadCalibrationText(file)) as FormatError;
      expect(err).toBeInstanceOf(FormatError);
      expect(err.code).toBe('E_CALIB_JSONL');
      expect(err.message).toContain(`${file}: line ${lineNo}:`);
      expect(err.message).toMatch(what);
      expect(err.hint).toMatch(/"text"/);
    }
  });

  it('rejects empty, too-short, non-UTF-8 and missing inputs with hints', () => {
    const expectErr = (spec: string, cls: typeof EdgeqError, code: string): void => {
      const err = caught(() => loadCalibrationText(spec)) as EdgeqError;
      expect(err).toBeInstanceOf(cls);
      expect(err.code).toBe(code);
      expect(err.hint).toBeTruthy();
    };
    expectErr(writeFile('empty.txt', ''), FormatError, 'E_CALIB_EMPTY');
    expectErr(writeFile('blank.txt', ' \r\n\n\t\r\n'), FormatError, 'E_CALIB_EMPTY');
    expectErr(writeFile('blank.jsonl', '\n\n'), FormatError, 'E_CALIB_EMPTY');
    expectErr(writeFile('short.txt', 'Too little text.\n'), FormatError, 'E_CALIB_TOO_SHORT');
    expectErr(writeFile('short.jsonl', '{"text": "tiny"}\n{"text": "set"}\n'), FormatError, 'E_CALIB_TOO_SHORT');
    expectErr(writeFile('latin1.txt', Buffer.from([...Buffer.from('x'.repeat(200)), 0xe9, 0x0a])), FormatError, 'E_CALIB_ENCODING');
    expectErr(path.join(work, 'does-not-exist.txt'), MissingFileError, 'E_NO_CALIBRATION');
    expectErr(work, MissingFileError, 'E_NO_CALIBRATION');
    expect((caught(() => loadCalibrationText('wikitext3')) as EdgeqError).hint).toContain('brown');
  });
});

describe('sampleCalibration', () => {
  it('returns N rows of BOS + T−1 consecutive text tokens, ids within the vocabulary', () => {
    const s = sampleCalibration(tok, small, { samples: 8, seqLen: 64, seed: 1, cache: false });
    expect(s).toMatchObject({ n: 8, seqLen: 64, seed: 1, addBos: true, textTokens: smallTokens.length, warnings: [], fromCache: false });
    expect(s.source).toEqual({ name: 'small.txt', sha256: small.sha256 });
    expect(s.ids).toBeInstanceOf(Int32Array);
    expect(s.ids.length).toBe(8 * 64);
    for (const id of s.ids) expect(id >= 0 && id < VOCAB).toBe(true);
    for (let r = 0; r < 8; r++) {
      const row = Array.from(s.ids.subarray(r * 64, (r + 1) * 64));
      expect(row[0]).toBe(BOS);
      expect(row.slice(1)).toEqual(smallTokens.slice(s.offsets[r], s.offsets[r] + 63));
      expect(row.slice(1)).not.toContain(BOS);
    }
    // enough text: windows are disjoint and in text order
    for (let r = 1; r < 8; r++) expect(s.offsets[r] - s.offsets[r - 1]).toBeGreaterThanOrEqual(63);
    expect(s.sha256).toBe(sha(new Uint8Array(s.ids.buffer)));
  });

  it('is deterministic: the same seed gives the same ids, another seed different ones', () => {
    const opts = { samples: 6, seqLen: 32, cache: false };
    const a = sampleCalibration(tok, small, { ...opts, seed: 1234 });
    const b = sampleCalibration(tok, small, { ...opts, seed: 1234 });
    const c = sampleCalibration(tok, small, { ...opts, seed: 1235 });
    expect(b.ids).toEqual(a.ids);
    expect(b.sha256).toBe(a.sha256);
    expect(c.sha256).not.toBe(a.sha256);
    expect(c.offsets).not.toEqual(a.offsets);
  });

  it('pins the PRNG and the offset algorithm (same numbers on every platform)', () => {
    const r = mulberry32(0);
    expect([r.nextU32(), r.nextU32(), r.nextU32()]).toEqual(PRNG_SEED0);
    expect(chooseOffsets(mulberry32(42), 1000, 4, 100)).toEqual(OFFSETS_SEED42);
    const overlapping = chooseOffsets(mulberry32(7), 50, 10, 20);
    expect(overlapping.every((o) => o >= 0 && o <= 30)).toBe(true);
  });

  it('without BOS, rows are T text tokens', () => {
    const s = sampleCalibration(tok, small, { samples: 3, seqLen: 16, seed: 5, addBos: false, cache: false });
    expect(s.addBos).toBe(false);
    for (let r = 0; r < 3; r++) expect(Array.from(s.ids.subarray(r * 16, (r + 1) * 16))).toEqual(smallTokens.slice(s.offsets[r], s.offsets[r] + 16));
    const noBosTok = Object.assign(Object.create(EdgeqTokenizer.prototype) as EdgeqTokenizer, tok, { bosId: null });
    const t = sampleCalibration(noBosTok, small, { samples: 3, seqLen: 16, seed: 5, cache: false });
    expect(t.ids).toEqual(s.ids);
    expect(t.warnings.join()).toMatch(/no BOS/);
  });

  it('errors when the text is shorter than one row, warns when rows must overlap', () => {
    const err = caught(() => sampleCalibration(tok, small, { samples: 1, seqLen: smallTokens.length + 2, seed: 0, cache: false })) as UsageError;
    expect(err).toBeInstanceOf(UsageError);
    expect(err.code).toBe('E_CALIB_TOO_SHORT');
    expect(err.hint).toMatch(/longer calibration text/);
    // exactly one row's worth of text is enough
    expect(sampleCalibration(tok, small, { samples: 1, seqLen: smallTokens.length + 1, seed: 0, cache: false }).offsets).toEqual([0]);
    const n = Math.ceil(smallTokens.length / 255) + 2;
    const s = sampleCalibration(tok, small, { samples: n, seqLen: 256, seed: 3, cache: false });
    expect(s.n).toBe(n);
    expect(s.warnings).toHaveLength(1);
    expect(s.warnings[0]).toMatch(/overlap/);
    for (const o of s.offsets) expect(o >= 0 && o + 255 <= smallTokens.length).toBe(true);
  });

  it('validates its options', () => {
    const bad: [object, string][] = [
      [{ samples: 0, seqLen: 8, seed: 0 }, 'E_CALIB_SAMPLES'],
      [{ samples: 2.5, seqLen: 8, seed: 0 }, 'E_CALIB_SAMPLES'],
      [{ samples: 2, seqLen: 1, seed: 0 }, 'E_CALIB_SEQLEN'],
      [{ samples: 2, seqLen: 8, seed: -1 }, 'E_SEED'],
      [{ samples: 2, seqLen: 8, seed: 2 ** 32 }, 'E_SEED'],
      [{ samples: 2, seqLen: 8, seed: 0.5 }, 'E_SEED'],
      [{ samples: 2 ** 20, seqLen: 2 ** 10, seed: 0 }, 'E_CALIB_TOO_LARGE'],
    ];
    for (const [opts, code] of bad) {
      const err = caught(() => sampleCalibration(tok, small, opts as never)) as UsageError;
      expect(err).toBeInstanceOf(UsageError);
      expect(err.code).toBe(code);
    }
  });

  it('caches the sample under EDGEQ_CACHE: a second call is a hit, a damaged entry is recomputed', () => {
    const opts = { samples: 4, seqLen: 48, seed: 99 };
    const first = sampleCalibration(tok, small, opts);
    expect(first.fromCache).toBe(false);
    const entries = fs.readdirSync(path.join(cacheDir, 'calib'));
    expect(entries).toHaveLength(1);
    expect(fs.readdirSync(path.join(cacheDir, 'tokens')).length).toBeGreaterThan(0);
    const second = sampleCalibration(tok, small, opts);
    expect(second.fromCache).toBe(true);
    expect({ ...second, fromCache: false }).toEqual(first);
    // other inputs → other entries
    expect(sampleCalibration(tok, small, { ...opts, seed: 100 }).fromCache).toBe(false);
    expect(sampleCalibration(tok, small, { ...opts, addBos: false }).fromCache).toBe(false);
    // flip one id byte: the stored digest no longer matches, so it is recomputed and rewritten
    const file = path.join(cacheDir, 'calib', entries[0]);
    const bytes = fs.readFileSync(file);
    bytes[bytes.length - 1] ^= 0xff;
    fs.writeFileSync(file, bytes);
    const third = sampleCalibration(tok, small, opts);
    expect(third.fromCache).toBe(false);
    expect(third.ids).toEqual(first.ids);
    expect(sampleCalibration(tok, small, opts).fromCache).toBe(true);
    expect(sampleCalibration(tok, small, { ...opts, cache: false }).fromCache).toBe(false);
  });

  it('samples the bundled set offline: no fetch, no sockets; pinned digest; instant second call', () => {
    const fetchSpy = vi.spyOn(globalThis, 'fetch').mockRejectedValue(new Error('network used'));
    const connectSpy = vi.spyOn(net.Socket.prototype, 'connect');
    const httpSpy = vi.spyOn(http, 'request');
    const httpsSpy = vi.spyOn(https, 'request');
    try {
      const cal = loadCalibrationText('brown');
      const s = sampleCalibration(tok, cal, { samples: 128, seqLen: 256, seed: 0 });
      expect(s.warnings).toEqual([]); // the bundled set holds 128 disjoint windows of 255 tokens
      expect(s.textTokens).toBe(BROWN_TEXT_TOKENS);
      expect(s.sha256).toBe(BROWN_128x256_SEED0_SHA256);
      const t0 = performance.now();
      const again = sampleCalibration(tok, loadCalibrationText('brown'), { samples: 128, seqLen: 256, seed: 0 });
      expect(again.fromCache).toBe(true);
      expect(again.sha256).toBe(s.sha256);
      expect(performance.now() - t0).toBeLessThan(1000);
      for (const spy of [fetchSpy, connectSpy, httpSpy, httpsSpy]) expect(spy).not.toHaveBeenCalled();
    } finally {
      vi.restoreAllMocks();
    }
  });
});

const PRNG_SEED0 = [1144304738, 1416247, 958946056]; // mulberry32(0): 0.2664292086847126 as a fraction of 2^32
const OFFSETS_SEED42 = [269, 461, 602, 812]; // L 1000, 4 windows of 100: sorted gaps 269, 361, 402, 512 + i·100
const BROWN_TEXT_TOKENS = 119241;
const BROWN_128x256_SEED0_SHA256 = '40b71228af5916ab1e149d61aeb43874be110091489fbce39d97d576ed0cd539';
