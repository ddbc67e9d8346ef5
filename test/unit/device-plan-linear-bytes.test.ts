/**
 * planLinearBytes (what `edgeq plan` reads per decode step for the block linears) counts every block
 * linear however it is stored: quantized, low-rank factors (quantized or F16) or dense F16. The reference
 * is the written checkpoint itself: the byte ranges of every stored tensor that belongs to a block linear,
 * parsed here from the raw safetensors header.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { planLinearBytes } from '../../src/devices/device-plan.js';
import { FIXTURE_MODELS } from '../helpers/fixtures.js';
import { mixedWithLowRank, writeMixedCheckpoint, type WrittenCheckpoint } from './lowrank-checkpoint-fixture.js';

let tmp: string;
let dir: string;
let written: WrittenCheckpoint;
beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'edgeq-device-plan-'));
  dir = path.join(tmp, 'mixed');
  written = await writeMixedCheckpoint(FIXTURE_MODELS.stories260K, dir, mixedWithLowRank);
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** Bytes of the stored tensors of block linears ('model.layers.N.{self_attn,mlp}.*_proj.…'), from the raw header. */
function storedLinearBytes(file: string): { bytes: number; names: string[] } {
  const buf = fs.readFileSync(file);
  const len = Number(buf.readBigUInt64LE(0));
  const h = JSON.parse(buf.subarray(8, 8 + len).toString('utf8')) as Record<string, { data_offsets?: [number, number] }>;
  let bytes = 0;
  const names: string[] = [];
  for (const [name, t] of Object.entries(h)) {
    if (!/^model\.layers\.\d+\.(self_attn|mlp)\.\w+_proj\./.test(name) || name.endsWith('.bias')) continue;
    bytes += t.data_offsets![1] - t.data_offsets![0];
    names.push(name);
  }
  return { bytes, names };
}

describe('planLinearBytes', () => {
  it('equals the stored bytes of all block linears of a checkpoint with quantized, low-rank and dense linears', () => {
    const ref = storedLinearBytes(path.join(dir, 'model.safetensors'));
    // the fixture really mixes the three kinds
    expect(ref.names.some((n) => n.includes('.lowrank_u.'))).toBe(true);
    expect(ref.names.some((n) => n.endsWith('.qweight'))).toBe(true);
    expect(ref.names.some((n) => n.endsWith('v_proj.weight'))).toBe(true);
    expect(planLinearBytes(written.plan)).toBe(ref.bytes);
  });

  it('counts a low-rank linear as its factors only', () => {
    const lr = written.plan.filter((e) => e.kind === 'lowrank');
    expect(lr.length).toBeGreaterThan(0);
    // dense F16 factors: 2 bytes per element of U (n, r) and V (r, k)
    const dense = lr.find((e) => e.kind === 'lowrank' && e.uGrid === null && e.vGrid === null)!;
    expect(dense).toBeDefined();
    const [n, k] = dense.shape;
    const r = (dense as { rank: number }).rank;
    expect(planLinearBytes([dense])).toBe(2 * (n * r + r * k));
  });
});
