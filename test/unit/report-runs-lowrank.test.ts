/**
 * collectRuns on a checkpoint with low-rank linears: parameters count each low-rank linear as the n·k
 * weight it stands for, stored bytes include its factors, bits per weight = 8 · bytes / params. The
 * references are independent of the edgeq reader: parameters from the source model's safetensors header,
 * stored bytes from the written file's own header (data offsets), both parsed here from the raw bytes.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { collectRuns } from '../../src/report/collect-runs.js';
import { FIXTURE_MODELS } from '../helpers/fixtures.js';
import { mixedWithLowRank, writeMixedCheckpoint } from './lowrank-checkpoint-fixture.js';

/** The JSON header of a safetensors file, read from its raw bytes. */
function rawHeader(file: string): Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }> {
  const buf = fs.readFileSync(file);
  const len = Number(buf.readBigUInt64LE(0));
  const h = JSON.parse(buf.subarray(8, 8 + len).toString('utf8')) as Record<string, unknown>;
  delete h['__metadata__'];
  return h as ReturnType<typeof rawHeader>;
}

let tmp: string;
let dir: string;
beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'edgeq-report-lowrank-'));
  dir = path.join(tmp, 'mixed');
  await writeMixedCheckpoint(FIXTURE_MODELS.stories260K, dir, mixedWithLowRank);
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('collectRuns with low-rank linears', () => {
  it('counts each low-rank linear as its original n·k parameters and its factors as stored bytes', async () => {
    const src = rawHeader(path.join(FIXTURE_MODELS.stories260K, 'model.safetensors'));
    const srcParams = Object.values(src).reduce((a, t) => a + t.shape.reduce((x, y) => x * y, 1), 0);
    const out = rawHeader(path.join(dir, 'model.safetensors'));
    const storedBytes = Object.values(out).reduce((a, t) => a + t.data_offsets[1] - t.data_offsets[0], 0);
    // the checkpoint really holds low-rank factors (and no '<module>.weight' for those linears)
    const factors = Object.keys(out).filter((n) => n.includes('.lowrank_'));
    expect(factors.length).toBeGreaterThan(0);

    const { runs } = await collectRuns(dir);
    expect(runs).toHaveLength(1);
    const ck = runs[0]!.checkpoint!;
    expect(ck).not.toBeNull();
    expect(ck.params).toBe(srcParams);
    expect(ck.storedBytes).toBe(storedBytes);
    expect(ck.bitsPerWeight).toBeCloseTo((8 * storedBytes) / srcParams, 12);
  });
});
