/**
 * ResumeSession.open, the gate before any work: a leftover partial output is refused without --resume;
 * --resume with a different request names the option (UsageError E_RESUME_MISMATCH); a partial folder
 * without a journal starts over; a partial folder locked by a live process is refused, a dead one's lock
 * is taken over.
 */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { UsageError } from '../../src/core/errors.js';
import { partialDirFor } from '../../src/formats/edgeq/atomic-dir.js';
import type { RequestFingerprint } from '../../src/pipeline/resume/fingerprint.js';
import { JOURNAL_FILE, writeJournal } from '../../src/pipeline/resume/journal.js';
import { LOCK_FILE, ResumeSession } from '../../src/pipeline/resume/session.js';

const H = (c: string) => c.repeat(64);
const FP: RequestFingerprint = {
  edgeqVersion: '0.1.0',
  format: 'edgeq',
  method: 'awq',
  bits: 4,
  groupSize: 128,
  sym: false,
  actOrder: false,
  damp: 0.01,
  imatrix: false,
  fallback: false,
  denseDtype: 'F16',
  calibration: { name: 'brown', sha256: H('a'), samples: 128, seqlen: 512, seed: 0 },
  plan: H('b'),
  model: { 'model.safetensors': { bytes: 100, sha256: H('d') } },
};

let tmp: string;
let out: string;
beforeEach(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'edgeq-session-unit-'));
  out = path.join(tmp, 'out');
  fs.mkdirSync(partialDirFor(out));
  await writeJournal(partialDirFor(out), {
    kind: 'edgeq-resume-journal',
    version: 1,
    fingerprint: FP,
    blocks: { done: 2, total: 6 },
    data: { file: 'model.safetensors', headerBytes: 64, dataBytes: 128, sha256: H('e') },
    activations: null,
    layers: [],
    awq: [],
  });
});
afterEach(() => fs.rmSync(tmp, { recursive: true, force: true }));

const open = (o: { resume: boolean; overwrite?: boolean; fingerprint?: RequestFingerprint }) =>
  ResumeSession.open({ outDir: out, resume: o.resume, overwrite: o.overwrite ?? false, blocks: 6, fingerprint: o.fingerprint ?? FP });
const fail = (p: Promise<unknown>) => p.then(() => { throw new Error('expected a refusal'); }, (e: unknown) => e as UsageError);

describe('ResumeSession.open', () => {
  it('--resume with the same request continues after the journaled blocks', async () => {
    const s = await open({ resume: true });
    expect(s.startBlock).toBe(2);
    expect(s.partialOptions).toEqual({ resumeFrom: { headerBytes: 64, dataBytes: 128, sha256: H('e') } });
  });

  it('without --resume a leftover partial is refused, unless --overwrite', async () => {
    const e = await fail(open({ resume: false }));
    expect(e).toBeInstanceOf(UsageError);
    expect(e.code).toBe('E_PARTIAL_EXISTS');
    expect((await open({ resume: false, overwrite: true })).startBlock).toBe(0);
  });

  it('--resume with another --calib-samples names it, and the hint says how to start over', async () => {
    const e = await fail(open({ resume: true, fingerprint: { ...FP, calibration: { ...FP.calibration!, samples: 64 } } }));
    expect(e).toBeInstanceOf(UsageError);
    expect(e.code).toBe('E_RESUME_MISMATCH');
    expect(e.message).toContain('the interrupted run had --calib-samples 128, this run has 64');
    expect(e.hint).toMatch(/--calib-samples 128.*--overwrite/);
  });

  it('a partial folder without a journal (killed before its first block) starts over', async () => {
    fs.rmSync(path.join(partialDirFor(out), JOURNAL_FILE));
    const s = await open({ resume: true });
    expect(s.startBlock).toBe(0);
    expect(s.partialOptions).toEqual({});
    expect(fs.existsSync(partialDirFor(out))).toBe(false); // the writer makes a fresh one
  });

  it('a partial folder locked by a live process is refused; a dead process lock is taken over', async () => {
    const live = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)'], { stdio: 'ignore' });
    try {
      fs.writeFileSync(path.join(partialDirFor(out), LOCK_FILE), JSON.stringify({ pid: live.pid }));
      for (const o of [{ resume: true }, { resume: false, overwrite: true }]) {
        const e = await fail(open(o));
        expect(e.code).toBe('E_PARTIAL_BUSY');
        expect(e.message).toContain(`pid ${live.pid}`);
      }
      expect(fs.existsSync(path.join(partialDirFor(out), JOURNAL_FILE))).toBe(true);
    } finally {
      live.kill('SIGKILL');
    }
    const dead = spawnSync(process.execPath, ['-e', '0']).pid;
    fs.writeFileSync(path.join(partialDirFor(out), LOCK_FILE), JSON.stringify({ pid: dead }));
    const s = await open({ resume: true });
    await s.begin();
    expect(JSON.parse(fs.readFileSync(path.join(partialDirFor(out), LOCK_FILE), 'utf8'))).toEqual({ pid: process.pid });
  });
});
