/**
 * The resumable output folder (formats/edgeq: atomic-dir, folder-writer, stream-writer in partial mode):
 * a checkpointed OUT.partial survives an abort, is reopened at its checkpoint (tail truncated, stray files
 * removed) and finishes byte-identical to an uninterrupted write; a damaged prefix, a bad offset, a fresh
 * run over a leftover partial and --resume without one are refused with their own codes.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { EdgeqError } from '../../src/core/errors.js';
import { partialDirFor } from '../../src/formats/edgeq/atomic-dir.js';
import { MODEL_FILE, PlannedFolderWriter } from '../../src/formats/edgeq/folder-writer.js';
import type { DataCheckpoint } from '../../src/formats/edgeq/stream-writer.js';
import type { TensorSpec } from '../../src/formats/safetensors/writer.js';

const SPECS: TensorSpec[] = [
  { name: 'a', dtype: 'F32', shape: [4] },
  { name: 'b', dtype: 'F16', shape: [8] },
  { name: 'c', dtype: 'F32', shape: [2, 3] },
];
const DATA: Record<string, Float32Array> = {
  a: Float32Array.of(1, 2, 3, 4),
  b: Float32Array.of(0.5, -1, 2, 8, 16, 0.25, 3, 7),
  c: Float32Array.of(9, 8, 7, 6, 5, 4),
};
const MD = { format: 'pt', note: 'end-of-run metadata' };

let tmp: string;
beforeEach(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'edgeq-partial-unit-'));
});
afterEach(() => fs.rmSync(tmp, { recursive: true, force: true }));

async function writeAll(dest: string): Promise<Buffer> {
  const w = await PlannedFolderWriter.create(dest, SPECS, { metadataEstimate: { format: 'pt' } });
  for (const s of SPECS) await w.writeDense(s.name, DATA[s.name]!);
  await w.finish(MD);
  return fs.readFileSync(path.join(dest, MODEL_FILE));
}

/** Writes a and b, checkpoints, starts c, then "crashes" (abort). */
async function interrupted(dest: string): Promise<DataCheckpoint> {
  const w = await PlannedFolderWriter.create(dest, SPECS, { metadataEstimate: { format: 'pt' }, partial: {} });
  expect(w.tempPath).toBe(partialDirFor(dest));
  await w.writeDense('a', DATA.a!);
  await w.writeDense('b', DATA.b!);
  const cp = await w.checkpoint();
  await w.writeDense('c', DATA.c!.subarray(0, 3)); // past the checkpoint: cut off on resume
  await w.abort();
  return cp;
}

const code = (e: unknown) => (e instanceof EdgeqError ? e.code : String(e));

describe('resumable output folder', () => {
  it('resumes at the checkpoint and finishes byte-identical to an uninterrupted write', async () => {
    const ref = await writeAll(path.join(tmp, 'ref'));
    const dest = path.join(tmp, 'out');
    const cp = await interrupted(dest);
    expect(cp.dataBytes).toBe(4 * 4 + 8 * 2);
    const partial = partialDirFor(dest);
    expect(fs.existsSync(dest)).toBe(false);
    expect(fs.statSync(path.join(partial, MODEL_FILE)).size).toBe(8 + cp.headerBytes + cp.dataBytes + 12);
    fs.writeFileSync(path.join(partial, 'config.json'), '{}'); // e.g. a kill during finish
    fs.writeFileSync(path.join(partial, '.edgeq-resume.json.tmp-1-ab'), 'x');
    fs.writeFileSync(path.join(partial, 'edgeq-resume.json'), '{}');

    const w = await PlannedFolderWriter.create(dest, SPECS, { metadataEstimate: { format: 'pt' }, partial: { resumeFrom: cp } });
    expect(fs.readdirSync(partial).sort()).toEqual(['edgeq-resume.json', MODEL_FILE]);
    expect(w.nextTensor).toBe('c');
    await w.writeDense('c', DATA.c!);
    expect((await w.checkpoint()).dataBytes).toBe(cp.dataBytes + 24);
    await w.finish(MD);
    expect(fs.existsSync(partial)).toBe(false);
    expect(fs.readdirSync(dest)).toEqual([MODEL_FILE]); // the resume files stay out of the output
    expect(fs.readFileSync(path.join(dest, MODEL_FILE)).equals(ref)).toBe(true);
  });

  it('refuses a damaged prefix, a wrong offset or reservation, and keeps the partial output', async () => {
    const dest = path.join(tmp, 'out');
    const cp = await interrupted(dest);
    const file = path.join(partialDirFor(dest), MODEL_FILE);
    const open = (from: DataCheckpoint) => PlannedFolderWriter.create(dest, SPECS, { metadataEstimate: { format: 'pt' }, partial: { resumeFrom: from } }).catch((e: unknown) => e);
    expect(String(await open({ ...cp, dataBytes: 20 }))).toMatch(/20 data bytes is not a tensor boundary/);
    expect(String(await open({ ...cp, headerBytes: cp.headerBytes + 8 }))).toMatch(/header reservation/);
    const bytes = fs.readFileSync(file);
    bytes[8 + cp.headerBytes + 3] ^= 0x40;
    fs.writeFileSync(file, bytes);
    const err = await open(cp);
    expect(code(err)).toBe('E_RESUME_DATA');
    expect(String(err)).toMatch(/does not match the journal/);
    expect(fs.existsSync(file)).toBe(true);
    fs.truncateSync(file, 8 + cp.headerBytes + 10);
    expect(String(await open(cp))).toMatch(/holds 10 data bytes, the journal says 32/);
  });

  it('a fresh run refuses a leftover partial (E_PARTIAL_EXISTS) unless overwrite; --resume needs one (E_NOTHING_TO_RESUME)', async () => {
    const dest = path.join(tmp, 'out');
    const resume = await PlannedFolderWriter.create(dest, SPECS, { partial: { resumeFrom: { headerBytes: 0, dataBytes: 0, sha256: '' } } }).catch((e: unknown) => e);
    expect(code(resume)).toBe('E_NOTHING_TO_RESUME');
    await interrupted(dest);
    const fresh = await PlannedFolderWriter.create(dest, SPECS, { partial: {} }).catch((e: unknown) => e);
    expect(code(fresh)).toBe('E_PARTIAL_EXISTS');
    expect((fresh as EdgeqError).hint).toMatch(/--resume.*--overwrite/);
    const w = await PlannedFolderWriter.create(dest, SPECS, { partial: {}, overwrite: true });
    expect(fs.statSync(path.join(partialDirFor(dest), MODEL_FILE)).size).toBe(0); // started over
    await w.abort(); // nothing checkpointed yet: the partial folder goes
    expect(fs.existsSync(partialDirFor(dest))).toBe(false);
  });
});
