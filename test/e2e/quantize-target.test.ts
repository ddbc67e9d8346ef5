/**
 * `edgeq quantize --target`: quantizes on the target's native grid (snapdragon / gguf q4_0 → int4 g32 sym,
 * gguf q8_0 → int8 g32 sym), so that the export repacks every linear without requantizing; contradicting
 * grid flags are refused before any work.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/run-cli.js';

let tmp: string;
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'edgeq-qtarget-'));
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const qtypesOf = (plan: { entries: { kind: string; qtype?: string }[] }): string[] => [...new Set(plan.entries.filter((e) => e.kind === 'quantized').map((e) => e.qtype!))];

describe('edgeq quantize --target', () => {
  it('plans on each target grid', async () => {
    for (const [args, qtype] of [
      [['--target', 'snapdragon'], 'int4_g32_sym'],
      [['--target', 'gguf', '--type', 'q4_0'], 'int4_g32_sym'],
      [['--target', 'gguf', '--type', 'q8_0'], 'int8_g32_sym'],
      [['--target', 'wasm'], 'int4_g128_asym'],
    ] as const) {
      const r = await runCli(['quantize', '-m', 'brown-llama-7m', '--method', 'rtn', ...args, '--dry-run', '--json']);
      expect(r.code, r.stderr).toBe(0);
      expect(qtypesOf(JSON.parse(r.stdout).plan), args.join(' ')).toEqual([qtype]);
    }
  });

  it('refuses flags that contradict the target', async () => {
    const r = await runCli(['quantize', '-m', 'brown-llama-7m', '--target', 'snapdragon', '--bits', '3', '--dry-run']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--bits 3 contradicts --target snapdragon/);
    const t = await runCli(['quantize', '-m', 'brown-llama-7m', '--type', 'q4_0', '--dry-run']);
    expect(t.code).toBe(2);
    expect(t.stderr).toMatch(/--type goes with --target gguf/);
  });

  it('a snapdragon-grid checkpoint exports to GGUF with every linear repacked', async () => {
    const out = path.join(tmp, 'sd');
    const q = await runCli(['quantize', '-m', 'brown-llama-7m', '--method', 'rtn', '--target', 'snapdragon', '-o', out, '--quiet', '--json', '--threads', '1']);
    expect(q.code, q.stderr).toBe(0);
    const e = await runCli(['export', '-m', out, '--target', 'gguf', '-o', path.join(tmp, 'sd.gguf'), '--json']);
    expect(e.code, e.stderr).toBe(0);
    const res = JSON.parse(e.stdout);
    expect(res.details.counts.requantize).toBe(0);
    expect(res.details.counts.repack).toBe(42); // 6 blocks × 7 linears
  }, 120_000);
});
