/**
 * The low-bit core executes packed weights without visible accuracy loss: for RTN checkpoints of
 * brown-llama-7m at every bit width (2/3/4/8) the perplexity on the packed LUT and int8-dot kernels is
 * within 0.5 % of the dequantized-fp32 reference path (the bound), on the first WikiText-2 windows;
 * so is the LM head quantized to int8 at load (--head int8).
 * Full method × bits coverage (GPTQ, AWQ) is `npm run bench:core-accuracy`.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/run-cli.js';

let tmp: string;
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'edgeq-core-acc-'));
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

async function ppl(model: string, extra: string[]): Promise<number> {
  const r = await runCli(['eval', '--model', model, '--max-windows', '4', '--no-speed', '--no-record', '--json', '--threads', '2', ...extra]);
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout).eval.ppl;
}

describe.each([
  { bits: 4, g: 128, sym: false },
  { bits: 3, g: 128, sym: false },
  { bits: 2, g: 64, sym: false },
  { bits: 4, g: 32, sym: true },
  { bits: 8, g: -1, sym: true },
])('core vs dequantized reference: int$bits g$g sym=$sym', ({ bits, g, sym }) => {
  it('perplexity within 0.5 % on every kernel', async () => {
    const out = path.join(tmp, `b${bits}g${g}${sym ? 's' : 'a'}`);
    const q = await runCli(['quantize', '-m', 'brown-llama-7m', '--method', 'rtn', '--bits', String(bits), '-g', String(g), sym ? '--sym' : '--asym', '-o', out, '--quiet', '--json', '--threads', '2']);
    expect(q.code, q.stderr).toBe(0);
    const ref = await ppl(out, ['--dequantized']);
    const kernels = bits === 8 ? ['int8'] : ['lut', 'int8'];
    for (const k of kernels) {
      const p = await ppl(out, ['--kernel', k]);
      expect(Math.abs(p / ref - 1), `${k}: ${p} vs ${ref}`).toBeLessThan(0.005);
      expect(p).not.toBe(ref); // the packed path really ran (int8 tables/activations round differently)
    }
    if (bits === 4 && g === 128) {
      // the LM head quantized at load to int8 per channel (llama.cpp keeps its output tensor at 6–8 bits)
      const p = await ppl(out, ['--head', 'int8']);
      expect(Math.abs(p / ref - 1), `head int8: ${p} vs ${ref}`).toBeLessThan(0.005);
    }
  }, 120_000);
});
