/**
 * `edgeq export --target gptq|awq` from an edgeq checkpoint writes the same tensors, byte for byte, and the
 * same quantization_config as quantizing straight into that layout (`edgeq quantize --format
 * autogptq|autoawq`) with the same deterministic RTN settings — the layouts themselves are checked against
 * the transcribed upstream unpack code in quantize-pipeline.test.ts. Grids a layout cannot hold are refused.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SafetensorsFile } from '../../src/formats/safetensors/reader.js';
import { runCli } from '../helpers/run-cli.js';

let tmp: string;
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'edgeq-export-hfq-'));
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

async function ok(args: string[]): Promise<void> {
  const r = await runCli([...args, '--quiet', '--threads', '1']);
  expect(r.code, `${args.join(' ')}\n${r.stderr}`).toBe(0);
}

async function sameTensors(a: string, b: string): Promise<void> {
  const fa = await SafetensorsFile.open(path.join(a, 'model.safetensors'));
  const fb = await SafetensorsFile.open(path.join(b, 'model.safetensors'));
  try {
    expect([...fa.tensors.keys()].sort()).toEqual([...fb.tensors.keys()].sort());
    for (const name of fa.tensors.keys()) {
      const ia = fa.info(name);
      const ib = fb.info(name);
      expect([ia.dtype, ...ia.shape], name).toEqual([ib.dtype, ...ib.shape]);
      expect(Buffer.from(await fa.readRaw(name)).equals(Buffer.from(await fb.readRaw(name))), name).toBe(true);
    }
  } finally {
    await fa.close();
    await fb.close();
  }
  const { meta: ma, ...qa } = JSON.parse(fs.readFileSync(path.join(a, 'config.json'), 'utf8')).quantization_config;
  const { meta: mb, ...qb } = JSON.parse(fs.readFileSync(path.join(b, 'config.json'), 'utf8')).quantization_config;
  expect(qa).toEqual(qb); // every key loaders read; `meta` is informational (how it was made)
  expect(ma?.quantizer_method).toBe(mb?.quantizer_method);
}

describe('edgeq export --target gptq|awq', () => {
  it.each([
    { target: 'gptq', format: 'autogptq', grid: ['--bits', '4', '-g', '128', '--sym'] },
    { target: 'awq', format: 'autoawq', grid: ['--bits', '4', '-g', '128', '--asym'] },
  ])('$target: same bytes as quantize --format $format', async ({ target, format, grid }) => {
    const base = ['quantize', '-m', 'brown-llama-7m', '--method', 'rtn', ...grid];
    const edgeqDir = path.join(tmp, `${target}-edgeq`);
    await ok([...base, '-o', edgeqDir]);
    await ok([...base, '--format', format, '-o', path.join(tmp, `${target}-direct`)]);
    await ok(['export', '-m', edgeqDir, '--target', target, '-o', path.join(tmp, `${target}-exported`)]);
    await sameTensors(path.join(tmp, `${target}-exported`), path.join(tmp, `${target}-direct`));
  }, 120_000);

  it('refuses a grid AutoAWQ cannot hold, leaving nothing behind', async () => {
    const dir = path.join(tmp, 'w3');
    await ok(['quantize', '-m', 'brown-llama-7m', '--method', 'rtn', '--bits', '3', '-g', '128', '-o', dir]);
    const out = path.join(tmp, 'w3-awq');
    const r = await runCli(['export', '-m', dir, '--target', 'awq', '-o', out]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/4-bit/);
    expect(fs.existsSync(out)).toBe(false);
  }, 120_000);
});
