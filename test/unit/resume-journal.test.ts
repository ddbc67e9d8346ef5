/**
 * The resume journal (src/pipeline/resume/): every fingerprint field is checked and named as the flag
 * that sets it; the journal and the activation files are replaced atomically and read back exactly; a
 * truncated or corrupt journal, and damaged activations, give a FormatError that says what is wrong.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FormatError } from '../../src/core/errors.js';
import { CalibActivations } from '../../src/pipeline/activations.js';
import { FINGERPRINT_FIELDS, fingerprintMismatch, hashModelFiles, type RequestFingerprint } from '../../src/pipeline/resume/fingerprint.js';
import {
  activationsFileFor,
  JOURNAL_FILE,
  loadActivations,
  parseJournal,
  readJournal,
  removeStaleActivations,
  saveActivations,
  writeJournal,
  type ResumeJournal,
} from '../../src/pipeline/resume/journal.js';

const H = (c: string) => c.repeat(64);

function fingerprint(): RequestFingerprint {
  return {
    edgeqVersion: '0.1.0',
    format: 'edgeq',
    method: 'gptq',
    bits: 4,
    groupSize: 128,
    sym: false,
    actOrder: false,
    damp: 0.01,
    imatrix: false,
    fallback: false,
    denseDtype: 'F16',
    calibration: { name: 'brown', sha256: H('a'), samples: 16, seqlen: 128, seed: 0 },
    plan: H('b'),
    model: { 'config.json': { bytes: 10, sha256: H('c') }, 'model.safetensors': { bytes: 100, sha256: H('d') } },
  };
}

function journal(done = 2): ResumeJournal {
  return {
    kind: 'edgeq-resume-journal',
    version: 1,
    fingerprint: fingerprint(),
    blocks: { done, total: 6 },
    data: { file: 'model.safetensors', headerBytes: 1024, dataBytes: 4096 * done, sha256: H('e') },
    activations: { file: activationsFileFor(done), n: 2, T: 3, d: 4, sha256: H('f') },
    layers: [{ name: 'model.layers.0.self_attn.q_proj.weight', relWeightError: 0.1 + 0.2 }],
    awq: [],
  };
}

/** A value different from `v` of the same kind. */
function changed(v: unknown): unknown {
  if (typeof v === 'number') return v + 1;
  if (typeof v === 'boolean') return !v;
  return `${String(v)}x`;
}

function setPath(o: Record<string, any>, key: string, v: unknown): void {
  const ks = key.split('.');
  let t = o;
  for (const k of ks.slice(0, -1)) t = t[k];
  t[ks.at(-1)!] = v;
}

describe('fingerprintMismatch', () => {
  it('identical requests match', () => {
    expect(fingerprintMismatch(fingerprint(), fingerprint())).toBeNull();
  });

  for (const { key, label } of FINGERPRINT_FIELDS) {
    it(`a different ${key} is named as '${label}' with both values`, () => {
      const now = fingerprint();
      const old = key.split('.').reduce<any>((o, k) => o[k], now);
      setPath(now, key, changed(old));
      const m = fingerprintMismatch(fingerprint(), now);
      expect(m).toEqual({ field: key, label, saved: typeof old === 'string' ? old : JSON.stringify(old), now: typeof old === 'string' ? `${old}x` : JSON.stringify(changed(old)) });
    });
  }

  it('calibration present vs absent is named as --calib', () => {
    const now = { ...fingerprint(), calibration: null };
    expect(fingerprintMismatch(fingerprint(), now)).toMatchObject({ field: 'calibration', label: '--calib', saved: 'brown' });
  });

  it('a changed, added or removed model file is named by its file name', () => {
    const edited = fingerprint();
    edited.model['model.safetensors'] = { bytes: 100, sha256: H('9') };
    expect(fingerprintMismatch(fingerprint(), edited)).toMatchObject({ field: 'model.model.safetensors', label: 'model file model.safetensors' });
    const added = fingerprint();
    added.model['tokenizer.json'] = { bytes: 5, sha256: H('1') };
    expect(fingerprintMismatch(fingerprint(), added)).toMatchObject({ label: 'model file tokenizer.json', saved: '(absent)' });
    const removed = fingerprint();
    delete removed.model['config.json'];
    expect(fingerprintMismatch(fingerprint(), removed)).toMatchObject({ label: 'model file config.json', now: '(absent)' });
  });
});

describe('journal files', () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'edgeq-resume-unit-'));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('hashModelFiles hashes every regular file but dot-files and folders', async () => {
    fs.writeFileSync(path.join(dir, 'config.json'), '{}');
    fs.writeFileSync(path.join(dir, '.hidden'), 'x');
    fs.mkdirSync(path.join(dir, 'sub'));
    const h = await hashModelFiles(dir);
    expect(h).toEqual({ 'config.json': { bytes: 2, sha256: '44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a' } });
  });

  it('is absent (null) before the first block, then replaced atomically: the last write wins, no temp file stays', async () => {
    expect(await readJournal(dir)).toBeNull();
    await writeJournal(dir, journal(1));
    await writeJournal(dir, journal(2));
    const j = await readJournal(dir);
    expect(j).toEqual(journal(2));
    expect(j!.layers[0]).toEqual({ name: 'model.layers.0.self_attn.q_proj.weight', relWeightError: 0.1 + 0.2 }); // doubles exact
    expect(fs.readdirSync(dir)).toEqual([JOURNAL_FILE]);
  });

  it('a temp file left by a kill during a rewrite does not affect the journal', async () => {
    await writeJournal(dir, journal(3));
    fs.writeFileSync(path.join(dir, `.${JOURNAL_FILE}.tmp-1-abc`), '{"kind":"edgeq-resume-jou');
    expect((await readJournal(dir))!.blocks.done).toBe(3);
  });

  it('a truncated journal names the problem and hints --overwrite', async () => {
    const text = JSON.stringify(journal());
    fs.writeFileSync(path.join(dir, JOURNAL_FILE), text.slice(0, text.length / 2));
    const err = await readJournal(dir).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FormatError);
    expect((err as FormatError).code).toBe('E_RESUME_JOURNAL');
    expect((err as FormatError).message).toMatch(/edgeq-resume\.json: not a valid resume journal: truncated or corrupt JSON/);
    expect((err as FormatError).hint).toMatch(/--overwrite/);
    fs.writeFileSync(path.join(dir, JOURNAL_FILE), '');
    await expect(readJournal(dir)).rejects.toThrow(/the file is empty/);
  });

  const corrupt: [string, (j: any) => void, RegExp][] = [
    ['another kind', (j) => (j.kind = 'x'), /kind is "x"/],
    ['a newer version', (j) => (j.version = 2), /version 2, this edgeq reads version 1/],
    ['no fingerprint', (j) => delete j.fingerprint, /fingerprint missing/],
    ['blocks done > total', (j) => (j.blocks.done = 7), /blocks\.done/],
    ['zero blocks done', (j) => (j.blocks.done = 0), /blocks\.done/],
    ['a fractional data offset', (j) => (j.data.dataBytes = 1.5), /data \{file/],
    ['a short data hash', (j) => (j.data.sha256 = 'abc'), /data \{file/],
    ['a data file outside the folder', (j) => (j.data.file = '../x'), /data \{file/],
    ['activations outside the resume files', (j) => (j.activations.file = 'model.safetensors'), /activations/],
    ['no layer reports', (j) => delete j.layers, /layers/],
  ];
  for (const [what, edit, msg] of corrupt) {
    it(`refuses ${what}`, () => {
      const j: any = structuredClone(journal());
      edit(j);
      expect(() => parseJournal(JSON.stringify(j), 'J')).toThrow(msg);
    });
  }

  it('activations round-trip exactly; a flipped byte or a short file is refused; stale files are removed', async () => {
    const a = new CalibActivations(2, 3, 4);
    for (let i = 0; i < a.data.length; i++) a.data[i] = Math.fround(Math.sin(i) * 1e3) / 7;
    const ref = await saveActivations(dir, 2, a);
    expect(ref).toMatchObject({ file: activationsFileFor(2), n: 2, T: 3, d: 4 });
    const back = await loadActivations(dir, ref);
    expect(Buffer.from(back.data.buffer).equals(Buffer.from(a.data.buffer))).toBe(true);

    const file = path.join(dir, ref.file);
    const bytes = fs.readFileSync(file);
    bytes[5] ^= 1;
    fs.writeFileSync(file, bytes);
    await expect(loadActivations(dir, ref)).rejects.toThrow(/SHA-256 differs/);
    fs.writeFileSync(file, bytes.subarray(0, 10));
    await expect(loadActivations(dir, ref)).rejects.toThrow(/holds 10 bytes, the journal says 96/);
    fs.rmSync(file);
    await expect(loadActivations(dir, ref)).rejects.toThrow(/missing/);

    await saveActivations(dir, 3, a);
    await saveActivations(dir, 4, a);
    await removeStaleActivations(dir, activationsFileFor(4));
    expect(fs.readdirSync(dir)).toEqual([activationsFileFor(4)]);
  });
});
