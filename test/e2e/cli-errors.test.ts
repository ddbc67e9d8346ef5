/**
 * Bad input through the real CLI: each case exits non-zero with `edgeq: <one line>` + `hint: …`, names the
 * problem (file, tensor, field), and never prints a stack trace.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SafetensorsFile } from '../../src/formats/safetensors/reader.js';
import { writeSafetensors } from '../../src/formats/safetensors/writer.js';
import { FIXTURE_MODELS } from '../helpers/fixtures.js';
import { runCli } from '../helpers/run-cli.js';

let tmp: string;

/** A copy of stories260K with one file replaced or removed. */
function variant(name: string, edit: (dir: string) => void): string {
  const dir = path.join(tmp, name);
  fs.cpSync(FIXTURE_MODELS.stories260K, dir, { recursive: true });
  edit(dir);
  return dir;
}

beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'edgeq-cli-errors-'));
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

function expectOneLineError(run: { stderr: string; code: number }, code: number, ...needles: string[]): void {
  expect(run.code).toBe(code);
  const lines = run.stderr.trim().split('\n');
  expect(lines[0]).toMatch(/^edgeq: /);
  expect(lines.length).toBeLessThanOrEqual(2);
  if (lines[1]) expect(lines[1]).toMatch(/^hint: /);
  expect(run.stderr).not.toMatch(/\n\s+at /); // no stack trace
  for (const n of needles) expect(run.stderr).toContain(n);
}

describe('edgeq CLI on bad input', () => {
  it('truncated safetensors', async () => {
    const dir = variant('truncated', (d) => {
      const f = path.join(d, 'model.safetensors');
      fs.truncateSync(f, Math.floor(fs.statSync(f).size / 2));
    });
    expectOneLineError(await runCli(['inspect', dir]), 3, 'model.safetensors');
  });

  it('absurd header length', async () => {
    const dir = variant('absurd', (d) => {
      const f = path.join(d, 'model.safetensors');
      const fd = fs.openSync(f, 'r+');
      const b = Buffer.alloc(8);
      b.writeBigUInt64LE(2n ** 62n);
      fs.writeSync(fd, b, 0, 8, 0);
      fs.closeSync(fd);
    });
    expectOneLineError(await runCli(['eval', '--model', dir, '--max-windows', '1']), 3, 'header');
  });

  it('NaN weights are reported with the tensor name', async () => {
    const dir = variant('nan', () => {});
    const src = await SafetensorsFile.open(path.join(FIXTURE_MODELS.stories260K, 'model.safetensors'));
    const tensors = [];
    for (const info of src.tensors.values()) {
      const data = await src.readF32(info.name);
      if (info.name === 'model.layers.2.mlp.up_proj.weight') data[17] = NaN;
      tensors.push({ name: info.name, dtype: 'F32' as const, shape: info.shape, data });
    }
    await src.close();
    await writeSafetensors(path.join(dir, 'model.safetensors'), tensors);
    expectOneLineError(await runCli(['inspect', dir, '--check-finite']), 3, 'model.layers.2.mlp.up_proj.weight', 'NaN');
    expectOneLineError(await runCli(['eval', '--model', dir, '--prompt', 'Hi', '-n', '2']), 3, 'model.layers.2.mlp.up_proj.weight');
  });

  it('missing tokenizer.json is named, with what to do', async () => {
    const dir = variant('no-tokenizer', (d) => fs.rmSync(path.join(d, 'tokenizer.json')));
    expectOneLineError(await runCli(['eval', '--model', dir, '--prompt', 'Hi']), 3, 'tokenizer.json', 'hint: copy tokenizer.json');
  });

  it('missing config.json is named', async () => {
    const dir = variant('no-config', (d) => fs.rmSync(path.join(d, 'config.json')));
    expectOneLineError(await runCli(['inspect', dir]), 3, 'config.json');
  });

  it('unsupported architecture lists the supported ones', async () => {
    const dir = variant('gpt2', (d) => {
      const f = path.join(d, 'config.json');
      fs.writeFileSync(f, JSON.stringify({ ...JSON.parse(fs.readFileSync(f, 'utf8')), model_type: 'gpt2' }));
    });
    expectOneLineError(await runCli(['inspect', dir]), 3, 'gpt2', 'llama', 'mistral', 'qwen2');
  });

  it('config.json that does not match the tensors', async () => {
    const dir = variant('mismatch', (d) => {
      const f = path.join(d, 'config.json');
      fs.writeFileSync(f, JSON.stringify({ ...JSON.parse(fs.readFileSync(f, 'utf8')), num_hidden_layers: 6 }));
    });
    expectOneLineError(await runCli(['inspect', dir]), 3, 'model.layers.5');
  });

  it('usage errors exit 2', async () => {
    expectOneLineError(await runCli(['eval', '--model', FIXTURE_MODELS.stories260K, '--ctx', '1']), 2, '--ctx');
    expectOneLineError(await runCli(['frobnicate']), 2);
    expectOneLineError(await runCli(['eval', '--model', '/no/such/folder']), 3, '/no/such/folder');
  });
});
