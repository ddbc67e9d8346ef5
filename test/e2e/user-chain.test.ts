/**
 * The three-command workflow on a user's own model folder, as typed (small calibration only to keep
 * it fast): quantize with AWQ on the Snapdragon grid, eval against the original, export the Snapdragon
 * bundle next to the checkpoint — the export repacks without loss.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FIXTURE_MODELS } from '../helpers/fixtures.js';
import { runCli } from '../helpers/run-cli.js';

let tmp: string;
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'edgeq-chain-'));
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('quantize → eval → export on a local model folder', () => {
  it('edgeq quantize --model M --method awq --bits 4 --target snapdragon -o out && edgeq eval --model out --baseline M && edgeq export --model out --target snapdragon', async () => {
    const M = path.join(tmp, 'my-model');
    fs.cpSync(FIXTURE_MODELS.brownLlama7m, M, { recursive: true });
    const out = path.join(tmp, 'out');
    const q = await runCli(['quantize', '--model', M, '--method', 'awq', '--bits', '4', '--target', 'snapdragon', '-o', out, '--calib-samples', '4', '--calib-seqlen', '64', '--quiet', '--threads', '2']);
    expect(q.code, q.stderr).toBe(0);
    const e = await runCli(['eval', '--model', out, '--baseline', M, '--max-windows', '2', '--no-speed', '--json', '--threads', '2']);
    expect(e.code, e.stderr).toBe(0);
    expect(JSON.parse(e.stdout).baseline.top1Agreement).toBeGreaterThan(0.5);
    const x = await runCli(['export', '--model', out, '--target', 'snapdragon', '--json', '--threads', '2']);
    expect(x.code, x.stderr).toBe(0);
    const res = JSON.parse(x.stdout);
    expect(res.path).toBe(`${out}-snapdragon`);
    expect(res.details.gguf.lossless).toBe(true);
    expect(fs.existsSync(path.join(`${out}-snapdragon`, 'manifest.json'))).toBe(true);
  }, 300_000);
});
