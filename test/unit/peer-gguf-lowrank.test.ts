/**
 * The GGUF type a peer comparison picks for a checkpoint with low-rank linears ('auto'): low-rank factors
 * count with their own code widths (F16 factors as 16 bits), so a checkpoint whose widest linear storage is
 * an int8 factor goes to Q8_0, and one made only of int4 factors to Q4_0 (both requantized: GGUF cannot hold
 * factors). The expected widths are written out by hand from the fixture's choices.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { choosePeerType, maxLinearBits } from '../../src/peer/peer-gguf.js';
import { FIXTURE_MODELS } from '../helpers/fixtures.js';
import { G, writeMixedCheckpoint } from './lowrank-checkpoint-fixture.js';

let tmp: string;
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'edgeq-peer-lowrank-'));
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const q = (bits: number) => ({ qtype: 'x', bits, groupSize: 32, sym: true, n: 8, k: 32, actOrder: false });
const lr = (u: string, v: string) => ({ n: 64, k: 64, rank: 8, u, v });

describe('maxLinearBits', () => {
  it('takes quantized weights and both factors of each low-rank linear', () => {
    expect(maxLinearBits([q(4), q(2)], [])).toBe(4);
    expect(maxLinearBits([q(4)], [lr('int8_pc_sym', 'int4_pc_asym')])).toBe(8);
    expect(maxLinearBits([q(2)], [lr('int4_pc_asym', 'F16')])).toBe(16);
    expect(maxLinearBits([], [lr('int4_pc_asym', 'int4_pc_asym')])).toBe(4);
    expect(maxLinearBits([], [])).toBe(16);
  });
});

describe('choosePeerType with low-rank linears', () => {
  it('int4 q/k linears and int8-factor low-rank linears → Q8_0 (not Q4_0), requantized', async () => {
    const dir = path.join(tmp, 'mixed8');
    await writeMixedCheckpoint(FIXTURE_MODELS.stories260K, dir, (role) =>
      role === 'q_proj' || role === 'k_proj' ? { kind: 'quantized', grid: G.q4_0 } : { kind: 'lowrank', rank: 8, uGrid: G.int8pcs, vGrid: G.int8pcs },
    );
    const c = await choosePeerType(dir);
    expect(c.type).toBe('q8_0');
    expect(c.requantize).toBe(true);
    expect(c.note).toMatch(/low-rank linears expanded/);
  });

  it('only int4-factor low-rank linears → Q4_0, requantized', async () => {
    const dir = path.join(tmp, 'lr4');
    await writeMixedCheckpoint(FIXTURE_MODELS.stories260K, dir, () => ({ kind: 'lowrank', rank: 8, uGrid: G.int4pca, vGrid: G.int4pca }));
    const c = await choosePeerType(dir);
    expect(c.type).toBe('q4_0');
    expect(c.requantize).toBe(true);
  });
});
