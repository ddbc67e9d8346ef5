/**
 * `edgeq bench --peer llama.cpp`: the checkpoint is exported to GGUF on the fly (Q4_0, the same integers
 * and scales, since the grid is Q4_0's), llama.cpp (node-llama-cpp) runs it alternating with edgeq, and
 * both sides report one sample per repetition; the temporary GGUF is removed afterwards.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/run-cli.js';

let tmp: string;
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'edgeq-bench-peer-'));
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('edgeq bench --peer llama.cpp', () => {
  it('runs both sides on the same Q4_0 weights', async () => {
    const out = path.join(tmp, 'q4');
    const q = await runCli(['quantize', '-m', 'brown-llama-7m', '--method', 'rtn', '--bits', '4', '-g', '32', '--sym', '-o', out, '--quiet', '--json', '--threads', '1']);
    expect(q.code, q.stderr).toBe(0);
    const before = fs.readdirSync(os.tmpdir()).filter((f) => f.startsWith('edgeq-peer-')).length;
    const run = await runCli(['bench', '--model', out, '--peer', 'llama.cpp', '-p', '32', '-n', '8', '-r', '2', '--json', '--threads', '1']);
    expect(run.code, run.stderr).toBe(0);
    const res = JSON.parse(run.stdout);
    expect(res.peer.name).toBe('llama.cpp');
    expect(res.peer.ggufType).toBe('Q4_0');
    expect(res.peer.lossless).toBe(true);
    expect(res.prefill.samples).toHaveLength(2);
    expect(res.decode.samples).toHaveLength(2);
    expect(res.peer.prefill.samples).toHaveLength(2);
    expect(res.peer.decode.samples).toHaveLength(2);
    expect(res.peer.decode.mean).toBeGreaterThan(0);
    expect(fs.readdirSync(os.tmpdir()).filter((f) => f.startsWith('edgeq-peer-')).length).toBe(before);
  }, 120_000);
});
