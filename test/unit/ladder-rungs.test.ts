/**
 * The ladder's rung table lowered per target (issue 6): what each target runs natively is searched, a rung
 * a target lacks is stored on the nearest native grid (and collapses with the rung it became), low rank
 * only where the export holds factors; budgets in bytes; the allocation of measured sensitivities.
 */
import { describe, expect, it } from 'vitest';
import { allocateFromSensitivity, budgetBytes } from '../../src/ladder/ladder-plan.js';
import { logicalRungs, resolveTreatment, rungsForTarget, targetAccepts, treatmentBytes } from '../../src/ladder/rungs.js';
import type { LinearSensitivity } from '../../src/ladder/sensitivity.js';
import { lowRankEntryBytes } from '../../src/formats/edgeq/plan.js';
import { qtypeFor } from '../../src/qtypes/registry.js';
import { EXECUTION_TARGETS, findExecutionTarget, isNative } from '../../src/targets/execution-targets.js';
import { selectedRungs } from '../../src/cli/commands/quantize-recipe.js';

describe('rungsForTarget', () => {
  it('wasm runs every logical rung as is, low rank included', () => {
    const r = rungsForTarget(findExecutionTarget('wasm'), false);
    expect(r.map((x) => x.id)).toEqual(logicalRungs(false).map((x) => x.id));
    expect(r.every((x) => !x.lowered && x.from.length === 0)).toBe(true);
  });
  it('snapdragon-cpu: F16, Q8_0 and Q4_0 only; int3/int2/g128 rungs collapse into Q4_0', () => {
    const r = rungsForTarget(findExecutionTarget('snapdragon-cpu'), false);
    expect(r.map((x) => x.id)).toEqual(['fp16', 'int8', 'int4-g32']);
    expect(r[1]!.treatment).toEqual({ kind: 'quantized', grid: { bits: 8, groupSize: 32, sym: true } });
    expect(r[1]!.lowered).toBe(true);
    expect(r[2]!.treatment).toEqual({ kind: 'quantized', grid: { bits: 4, groupSize: 32, sym: true } });
    expect(r[2]!.from).toEqual(['int4-g128', 'int3-g128', 'int2-g64']);
  });
  it('snapdragon-npu keeps its LPBQ block sizes and per-channel int8, no low rank', () => {
    const r = rungsForTarget(findExecutionTarget('snapdragon-npu'), true);
    const grids = r.filter((x) => x.treatment.kind === 'quantized').map((x) => (x.treatment as { grid: { bits: number; groupSize: number } }).grid);
    expect(grids).toContainEqual({ bits: 8, groupSize: -1, sym: true });
    expect(grids).toContainEqual({ bits: 4, groupSize: 128, sym: true });
    expect(r.some((x) => x.treatment.kind === 'lowrank')).toBe(false);
  });
  it('every target: each quantized rung is native, low rank only where the export holds factors', () => {
    for (const t of EXECUTION_TARGETS) {
      for (const r of rungsForTarget(t, false)) {
        if (r.treatment.kind === 'quantized') expect(isNative(t, r.treatment.grid), `${t.id} ${r.id}`).toBe(true);
        if (r.treatment.kind === 'lowrank') expect(t.lowRank).toBe(true);
      }
    }
  });
});

describe('resolveTreatment / treatmentBytes', () => {
  it('falls back to per channel when the group does not divide k, which a GGUF target then refuses', () => {
    const t = resolveTreatment({ kind: 'quantized', grid: { bits: 4, groupSize: 32, sym: true } }, 64, 172);
    expect(t).toEqual({ kind: 'quantized', grid: { bits: 4, groupSize: -1, sym: true } });
    expect(targetAccepts(findExecutionTarget('snapdragon-cpu'), t)).toBe(false);
    expect(targetAccepts(findExecutionTarget('wasm'), t)).toBe(true);
  });
  it('bytes are the registry\'s (quantized), 2·n·k (F16) and the format\'s low-rank bytes', () => {
    const g = { bits: 3 as const, groupSize: 128, sym: false };
    expect(treatmentBytes({ kind: 'quantized', grid: g }, 256, 768)).toBe(qtypeFor(g).bytes(256, 768, 'w.weight'));
    expect(treatmentBytes({ kind: 'dense' }, 256, 768)).toBe(256 * 768 * 2);
    const lr = resolveTreatment({ kind: 'lowrank', keep: 0.5, whitening: 'svdllm', factorGrid: { bits: 8, groupSize: 128, sym: true } }, 256, 768);
    expect(lr.kind === 'lowrank' && lr.rank).toBe(Math.floor((0.5 * 256 * 768) / (256 + 768)));
    // r = 96 is not a multiple of 128: U falls back to per channel, V (k = 768) keeps g128
    expect(lr.kind === 'lowrank' && lr.uGrid!.groupSize).toBe(-1);
    expect(lr.kind === 'lowrank' && lr.vGrid!.groupSize).toBe(128);
    if (lr.kind === 'lowrank') expect(treatmentBytes(lr, 256, 768, 'a.weight')).toBe(lowRankEntryBytes({ kind: 'lowrank', name: 'a.weight', shape: [256, 768], rank: lr.rank, uGrid: lr.uGrid, vGrid: lr.vGrid }));
  });
});

describe('budgets and allocation', () => {
  it('--target-bpw counts the linears; --max-size removes the other tensors', () => {
    expect(budgetBytes({ bitsPerWeight: 3 }, 1000)).toBe(375);
    expect(budgetBytes({ maxBytes: 5e6, otherBytes: 1e6 }, 1000)).toBe(4e6);
    expect(() => budgetBytes({ maxBytes: 1e6, otherBytes: 2e6 }, 1000)).toThrow(/nothing for the linears/);
  });
  it('picks the smallest total loss within the budget and reports exact bytes', () => {
    const rungs = rungsForTarget(findExecutionTarget('snapdragon-cpu'), true);
    const mk = (name: string, scale: number): LinearSensitivity => ({
      name,
      layer: 0,
      role: 'q_proj',
      n: 32,
      k: 32,
      probe: 'int4-g32',
      probeKl: scale,
      coefficient: 1,
      rungs: rungs.map((r, i) => ({ id: r.id, treatment: resolveTreatment(r.treatment, 32, 32), bytes: treatmentBytes(resolveTreatment(r.treatment, 32, 32), 32, 32), outputError: 0, loss: [0, 0.01, 1][i]! * scale })),
    });
    const sens = [mk('a.weight', 1), mk('b.weight', 100)];
    const q4 = sens[0]!.rungs[2]!.bytes;
    const q8 = sens[0]!.rungs[1]!.bytes;
    // room for one Q8_0 and one Q4_0: the sensitive layer gets Q8_0
    const { plan } = allocateFromSensitivity(sens, rungs, q4 + q8);
    expect(plan.choices.map((c) => c.rung)).toEqual(['int4-g32', 'int8']);
    expect(plan.bytes).toBe(q4 + q8);
    expect(plan.estimatedLoss).toBeCloseTo(1 + 1, 10);
  });
});

describe('--rungs (selectedRungs)', () => {
  it('absent: null (the whole ladder); present: only those rungs, in ladder order, lowered to the target', () => {
    expect(selectedRungs(undefined, findExecutionTarget('wasm'), false)).toBeNull();
    expect(selectedRungs('int2-g64, fp16,int3-g128', findExecutionTarget('wasm'), false)!.map((r) => r.id)).toEqual(['fp16', 'int3-g128', 'int2-g64']);
    // on snapdragon-cpu int3/int2 lower into Q4_0: the first listed keeps the id, the other is recorded in `from`
    const sd = selectedRungs('int3-g128,int2-g64', findExecutionTarget('snapdragon-cpu'), false)!;
    expect(sd).toHaveLength(1);
    expect(sd[0]!.id).toBe('int3-g128');
    expect(sd[0]!.from).toEqual(['int2-g64']);
    expect(sd[0]!.treatment).toEqual({ kind: 'quantized', grid: { bits: 4, groupSize: 32, sym: true } });
  });
  it('refuses unknown ids, an empty list, and a list the target runs none of', () => {
    expect(() => selectedRungs('int5-g64', findExecutionTarget('wasm'), false)).toThrow(/unknown rung int5-g64[\s\S]*/);
    expect(() => selectedRungs(' , ', findExecutionTarget('wasm'), false)).toThrow(/--rungs is empty/);
    expect(() => selectedRungs('lr25-int8', findExecutionTarget('snapdragon-cpu'), false)).toThrow(/runs none of the rungs lr25-int8/);
  });
});
