import { describe, expect, it } from 'vitest';
import { EXPORT_TARGETS } from '../../src/export/targets.js';
import { nativeGgufTypeOfGrid } from '../../src/export/gguf-plan.js';
import { qtypeFor } from '../../src/qtypes/registry.js';
import { EXECUTION_TARGETS, findExecutionTarget, isNative, lowerToTarget } from '../../src/targets/execution-targets.js';

describe('execution targets', () => {
  it('every row quantizes on a grid it runs natively and exports through a real export target', () => {
    const exportIds = new Set([...EXPORT_TARGETS.map((t) => t.id), 'edgeq']);
    for (const t of EXECUTION_TARGETS) {
      expect(isNative(t, t.grid), t.id).toBe(true);
      expect(exportIds.has(t.export), t.id).toBe(true);
      for (const n of t.native) expect(() => qtypeFor(n)).not.toThrow();
    }
  });

  it('the GGUF-backed targets quantize on a grid the GGUF writer repacks without loss', () => {
    for (const id of ['snapdragon', 'gguf-q4_0', 'gguf-q8_0']) {
      const t = findExecutionTarget(id);
      expect(nativeGgufTypeOfGrid(t.grid, false), id).not.toBeNull();
    }
  });

  it('lowers a missing rung to the nearest native grid', () => {
    const sd = findExecutionTarget('snapdragon');
    expect(lowerToTarget(sd, { bits: 3, groupSize: 128, sym: false })).toEqual({ bits: 4, groupSize: 32, sym: true }); // int3 as 4-bit codes, g128 → blocks of 32
    expect(lowerToTarget(sd, { bits: 2, groupSize: 64, sym: false })).toEqual({ bits: 4, groupSize: 32, sym: true });
    expect(lowerToTarget(sd, { bits: 8, groupSize: -1, sym: true })).toEqual({ bits: 8, groupSize: 32, sym: true });
    expect(lowerToTarget(sd, { bits: 4, groupSize: 32, sym: true })).toEqual({ bits: 4, groupSize: 32, sym: true });
    const wasm = findExecutionTarget('wasm');
    expect(lowerToTarget(wasm, { bits: 3, groupSize: 128, sym: false })).toEqual({ bits: 3, groupSize: 128, sym: false });
    const npu = findExecutionTarget('snapdragon-npu');
    expect(lowerToTarget(npu, { bits: 4, groupSize: 128, sym: false })).toEqual({ bits: 4, groupSize: 128, sym: true });
    expect(lowerToTarget(npu, { bits: 2, groupSize: 32, sym: true })).toEqual({ bits: 4, groupSize: 32, sym: true });
  });

  it('names the known targets when one is unknown', () => {
    let err: unknown;
    try {
      findExecutionTarget('tpu');
    } catch (e) {
      err = e;
    }
    expect(String((err as { message: string }).message)).toMatch(/unknown target 'tpu'/);
    expect(String((err as { hint: string }).hint)).toMatch(/snapdragon.*wasm/);
  });
});
