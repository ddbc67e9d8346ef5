/**
 * `--model org/name` end to end through the CLI against a loopback server in the hub's URL layout:
 * the first run downloads into HF_HOME, the second runs with the server gone, from the cache.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeHub, type FakeHub } from '../helpers/fake-hub-server.js';
import { FIXTURE_MODELS } from '../helpers/fixtures.js';
import { runCli } from '../helpers/run-cli.js';

const REPO = 'edgeq-test/stories260K';
const KEYS = ['HF_HOME', 'HF_HUB_CACHE', 'HF_ENDPOINT', 'HF_HUB_OFFLINE', 'HF_TOKEN'] as const;
let saved: Record<string, string | undefined>;
let tmp: string;
let hub: FakeHub;

beforeAll(async () => {
  saved = Object.fromEntries(KEYS.map((k) => [k, process.env[k]]));
  for (const k of KEYS) delete process.env[k];
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'edgeq-cli-hub-'));
  const f = (n: string) => path.join(FIXTURE_MODELS.stories260K, n);
  hub = await startFakeHub({ repos: { [REPO]: { revisions: { main: { 'config.json': f('config.json'), 'model.safetensors': f('model.safetensors'), 'tokenizer.json': f('tokenizer.json') } } } } });
  process.env.HF_HOME = path.join(tmp, 'hf');
  process.env.HF_ENDPOINT = hub.url;
});

afterAll(async () => {
  await hub.close().catch(() => {});
  for (const k of KEYS) {
    if (saved[k] === undefined) delete process.env[k];
    else process.env[k] = saved[k];
  }
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe('edgeq eval --model <hub id>', () => {
  it('downloads once, then runs offline from the cache with the same result', async () => {
    const args = ['eval', '--model', REPO, '--prompt', 'Once upon a time', '-n', '12', '--json'];
    const local = JSON.parse((await runCli(['eval', '--model', FIXTURE_MODELS.stories260K, ...args.slice(3)])).stdout);
    const first = await runCli(args);
    expect(first.code).toBe(0);
    const firstJson = JSON.parse(first.stdout);
    expect(firstJson.generation.ids).toEqual(local.generation.ids);
    expect(firstJson.model).toContain(path.join(tmp, 'hf', 'hub', 'models--edgeq-test--stories260K', 'snapshots'));
    expect(hub.requests.some((r) => r.path.includes('/resolve/'))).toBe(true);

    await hub.close();
    const second = await runCli(args);
    expect(second.code).toBe(0);
    expect(JSON.parse(second.stdout).generation.ids).toEqual(local.generation.ids);

    const missing = await runCli(['inspect', 'edgeq-test/never-downloaded']);
    expect(missing.code).toBe(4);
    expect(missing.stderr).toMatch(/^edgeq: .*edgeq-test\/never-downloaded/);
  });
});
