/**
 * `edgeq demo` end to end with a small calibration and few windows: both 4-bit checkpoints on the
 * Snapdragon grid, their eval records, a lossless Snapdragon bundle of the better one (lower KL), the HTML
 * report, and a JSON summary whose numbers are the records'.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/run-cli.js';

let tmp: string;
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'edgeq-demo-'));
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('edgeq demo', () => {
  it('quantizes, evaluates, exports and reports', async () => {
    const out = path.join(tmp, 'demo');
    const run = await runCli(['demo', '-o', out, '--max-windows', '2', '--calib-samples', '4', '--calib-seqlen', '64', '--json', '--threads', '2']);
    expect(run.code, run.stderr).toBe(0);
    const s = JSON.parse(run.stdout);
    expect(s.runs.map((r: { name: string }) => r.name)).toEqual(['AWQ w4 g32', 'GPTQ w4 g32']);
    for (const r of s.runs) {
      const rec = JSON.parse(fs.readFileSync(path.join(r.dir, 'edgeq-eval.json'), 'utf8'));
      expect(rec.baseline.meanKl).toBe(r.meanKl);
      expect(rec.eval.ppl).toBe(r.ppl);
      expect(r.meanKl).toBeGreaterThan(0);
      expect(r.top1Agreement).toBeGreaterThan(0.5);
    }
    const best = s.runs.reduce((a: { meanKl: number }, b: { meanKl: number }) => (b.meanKl < a.meanKl ? b : a));
    expect(s.exported.from).toBe(best.dir);
    expect(s.exported.ggufLossless).toBe(true);
    const manifest = JSON.parse(fs.readFileSync(path.join(s.exported.dir, 'manifest.json'), 'utf8'));
    expect(fs.statSync(path.join(s.exported.dir, manifest.gguf.file)).size).toBe(manifest.gguf.bytes);
    expect(fs.existsSync(path.join(s.exported.dir, manifest.qnn.encodings))).toBe(true);
    expect(fs.readFileSync(path.join(s.exported.dir, 'README.md'), 'utf8')).toMatch(/llama-cli -m gguf\/model-q4_0.gguf/);
    const html = fs.readFileSync(s.report, 'utf8');
    expect(html).toMatch(/<svg/);
    expect(html).toContain('brown-gptq-w4g32');
  }, 600_000);
});
