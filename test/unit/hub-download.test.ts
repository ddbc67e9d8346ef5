import { createHash, randomBytes } from 'node:crypto';
import { cpSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { EdgeqError, HubError, MissingFileError, UsageError } from '../../src/core/errors.js';
import { resolveModelSource, type ModelSourceProgress } from '../../src/store/model-source.js';
import { startFakeHub, type FakeHub, type FakeRepoSpec } from '../helpers/fake-hub-server.js';
import { FIXTURE_MODELS } from '../helpers/fixtures.js';

const SRC = FIXTURE_MODELS.stories260K;
const REPO = 'edgeq-test/stories260K';
const TOKEN = 'hf_secret_fake_token';
const fixture = (f: string): string => path.join(SRC, f);
const V2_CONFIG = Buffer.from(JSON.stringify({ ...JSON.parse(readFileSync(fixture('config.json'), 'utf8')), edgeq_revision: 'v2' }));
const GEN_CONFIG = Buffer.from('{"bos_token_id": 1, "eos_token_id": 2}\n');
const TOK_CONFIG = Buffer.from('{"model_max_length": 256}\n');
const JUNK = randomBytes(4096);
const SHARD_A = randomBytes(3000);
const SHARD_B = randomBytes(2000);
const SHARD_INDEX = Buffer.from(
  JSON.stringify({ metadata: { total_size: 5000 }, weight_map: { 'a.weight': 'model-00001-of-00002.safetensors', 'b.weight': 'model-00002-of-00002.safetensors', 'c.weight': 'model-00001-of-00002.safetensors' } }),
);

/** The files a model needs, as the repo should hold them after a download of main. */
const WANTED_MAIN = ['config.json', 'generation_config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json'];

const stories = {
  'config.json': fixture('config.json'),
  'model.safetensors': fixture('model.safetensors'),
  'tokenizer.json': fixture('tokenizer.json'),
};

const REPOS: Record<string, FakeRepoSpec> = {
  [REPO]: {
    revisions: {
      main: {
        ...stories,
        'generation_config.json': GEN_CONFIG,
        'tokenizer_config.json': TOK_CONFIG,
        'README.md': Buffer.from('# stories260K\n'),
        'pytorch_model.bin': JUNK,
        'model.gguf': JUNK,
        'onnx/model.onnx': JUNK,
        'original/consolidated.safetensors': JUNK,
      },
      v2: { ...stories, 'config.json': V2_CONFIG },
    },
  },
  'edgeq-test/private': { token: TOKEN, revisions: { main: stories } },
  'edgeq-test/sharded': {
    revisions: {
      main: {
        'config.json': fixture('config.json'),
        'model.safetensors.index.json': SHARD_INDEX,
        'model-00001-of-00002.safetensors': SHARD_A,
        'model-00002-of-00002.safetensors': SHARD_B,
        'consolidated.safetensors': JUNK,
      },
    },
  },
  'edgeq-test/bin-only': { revisions: { main: { 'config.json': fixture('config.json'), 'pytorch_model.bin': JUNK } } },
};

const ENV_KEYS = ['HF_HOME', 'HF_HUB_CACHE', 'HUGGINGFACE_HUB_CACHE', 'HF_TOKEN', 'HF_ENDPOINT', 'HF_HUB_OFFLINE'] as const;
let savedEnv: Record<string, string | undefined>;
let tmp: string;
let hfHome: string;
let hub: FakeHub;
let hubOpen: boolean;

beforeEach(async () => {
  savedEnv = Object.fromEntries(ENV_KEYS.map((k) => [k, process.env[k]]));
  for (const k of ENV_KEYS) delete process.env[k];
  tmp = mkdtempSync(path.join(os.tmpdir(), 'edgeq-hub-'));
  hfHome = path.join(tmp, 'hf-home');
  process.env['HF_HOME'] = hfHome;
  hub = await startFakeHub({ repos: REPOS, pageSize: 3 });
  hubOpen = true;
});

afterEach(async () => {
  if (hubOpen) await hub.close();
  for (const k of ENV_KEYS) {
    if (savedEnv[k] === undefined) delete process.env[k];
    else process.env[k] = savedEnv[k];
  }
  rmSync(tmp, { recursive: true, force: true });
});

async function stopHub(): Promise<void> {
  await hub.close();
  hubOpen = false;
}

const storageOf = (repo: string): string => path.join(hfHome, 'hub', `models--${repo.replace('/', '--')}`);
const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

async function rejection(p: Promise<unknown>): Promise<EdgeqError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, 'expected a rejection').toBeInstanceOf(EdgeqError);
  return err as EdgeqError;
}

describe('resolveModelSource: hub download', () => {
  it('downloads only the model files into the HF cache layout, byte-identical, with progress', async () => {
    const events: ModelSourceProgress[] = [];
    const debug = vi.spyOn(console, 'debug'); // the library's per-file "Downloading … .incomplete" line is dropped
    const res = await resolveModelSource(REPO, { endpoint: hub.url, onProgress: (p) => events.push(p) });
    expect(debug).not.toHaveBeenCalled();
    expect(console.debug).toBe(debug); // restored afterwards
    debug.mockRestore();

    const commit = hub.commitOf(REPO, 'main');
    const storage = storageOf(REPO);
    expect(res).toEqual({ dir: path.join(storage, 'snapshots', commit), source: 'hub-download', repo: REPO, revision: 'main', commit });
    expect(readdirSync(res.dir).sort()).toEqual(WANTED_MAIN);
    for (const f of ['config.json', 'model.safetensors', 'tokenizer.json']) {
      expect(readFileSync(path.join(res.dir, f)).equals(readFileSync(fixture(f))), f).toBe(true);
      expect(lstatSync(path.join(res.dir, f)).isSymbolicLink()).toBe(true);
    }
    expect(readFileSync(path.join(res.dir, 'generation_config.json')).equals(GEN_CONFIG)).toBe(true);

    // Standard layout: blobs (LFS files named by sha256), snapshots/<commit>, refs/main.
    expect(readdirSync(storage).sort()).toEqual(['blobs', 'refs', 'snapshots']);
    expect(readFileSync(path.join(storage, 'refs', 'main'), 'utf8')).toBe(commit);
    const blobs = readdirSync(path.join(storage, 'blobs'));
    expect(blobs).toContain(sha256(readFileSync(fixture('model.safetensors'))));
    expect(blobs).toHaveLength(WANTED_MAIN.length);
    expect(blobs.some((b) => b.endsWith('.incomplete'))).toBe(false);

    // Nothing else was fetched; the listing was paged (pageSize 3) and no token was sent.
    const fetched = hub.requests.filter((r) => r.path.includes('/resolve/')).map((r) => r.path.split('/').pop());
    expect(new Set(fetched)).toEqual(new Set(WANTED_MAIN));
    expect(hub.requests.filter((r) => r.path.includes('/tree/')).length).toBeGreaterThan(1);
    expect(hub.requests.every((r) => r.authorization === undefined)).toBe(true);

    // Progress: every file starts at 0 and ends at its size; overall bytes reach the total.
    expect(new Set(events.map((e) => e.fileCount))).toEqual(new Set([WANTED_MAIN.length]));
    expect(new Set(events.map((e) => e.fileIndex))).toEqual(new Set(WANTED_MAIN.map((_, i) => i)));
    const model = events.filter((e) => e.file === 'model.safetensors');
    expect(model[0]!.bytes).toBe(0);
    expect(model.at(-1)!.bytes).toBe(model.at(-1)!.totalBytes);
    expect(model.at(-1)!.totalBytes).toBe(readFileSync(fixture('model.safetensors')).length);
    const last = events.at(-1)!;
    expect(last.overallBytes).toBe(last.overallTotalBytes);
  });

  it('reuses the cache: hub-cache online with nothing new, and offline / with the server stopped', async () => {
    const first = await resolveModelSource(REPO, { endpoint: hub.url });
    hub.requests.length = 0;

    const again = await resolveModelSource(REPO, { endpoint: hub.url });
    expect(again).toEqual({ ...first, source: 'hub-cache' });
    expect(hub.requests.some((r) => r.path.includes('/resolve/'))).toBe(false);

    hub.requests.length = 0;
    expect(await resolveModelSource(REPO, { endpoint: hub.url, offline: true })).toEqual({ ...first, source: 'hub-cache' });
    process.env['HF_HUB_OFFLINE'] = '1';
    expect(await resolveModelSource(`hf://${REPO}`, { endpoint: hub.url })).toEqual({ ...first, source: 'hub-cache' });
    delete process.env['HF_HUB_OFFLINE'];
    expect(hub.requests).toHaveLength(0);

    await stopHub();
    const offline = await resolveModelSource(REPO, { endpoint: hub.url });
    expect(offline).toEqual({ ...first, source: 'hub-cache' });
    expect(readFileSync(path.join(offline.dir, 'model.safetensors')).equals(readFileSync(fixture('model.safetensors')))).toBe(true);
  });

  it('a repo never cached, offline, is a HubError naming the repo with a hint', async () => {
    const byFlag = await rejection(resolveModelSource(REPO, { endpoint: hub.url, offline: true }));
    expect(byFlag).toBeInstanceOf(HubError);
    expect(byFlag.code).toBe('E_HUB_OFFLINE');
    expect(byFlag.message).toContain(REPO);
    expect(byFlag.hint).toMatch(/HF_ENDPOINT/);
    expect(byFlag.hint).toMatch(/local folder/);

    await stopHub();
    const unreachable = await rejection(resolveModelSource(REPO, { endpoint: hub.url }));
    expect(unreachable).toBeInstanceOf(HubError);
    expect(unreachable.code).toBe('E_HUB_OFFLINE');
    expect(unreachable.message).toContain(REPO);
    expect(unreachable.message).toContain('cannot reach');
  });

  it('a missing repo or revision is a clear HubError', async () => {
    const repo404 = await rejection(resolveModelSource('edgeq-test/no-such-model', { endpoint: hub.url }));
    expect(repo404).toBeInstanceOf(HubError);
    expect(repo404.code).toBe('E_HUB_NOT_FOUND');
    expect(repo404.message).toContain('edgeq-test/no-such-model');

    const rev404 = await rejection(resolveModelSource(`${REPO}@nope`, { endpoint: hub.url }));
    expect(rev404.code).toBe('E_HUB_REVISION_NOT_FOUND');
    expect(rev404.message).toContain("'nope'");
  });

  it('sends the token as Authorization: Bearer and explains a 401', async () => {
    const noToken = await rejection(resolveModelSource('edgeq-test/private', { endpoint: hub.url }));
    expect(noToken).toBeInstanceOf(HubError);
    expect(noToken.code).toBe('E_HUB_AUTH');
    expect(noToken.hint).toContain('HF_TOKEN');

    const wrong = await rejection(resolveModelSource('edgeq-test/private', { endpoint: hub.url, token: 'hf_wrong' }));
    expect(wrong.code).toBe('E_HUB_AUTH');
    const malformed = await rejection(resolveModelSource('edgeq-test/private', { endpoint: hub.url, token: 'secret' }));
    expect(malformed.code).toBe('E_HUB_BAD_TOKEN');

    hub.requests.length = 0;
    const res = await resolveModelSource('edgeq-test/private', { endpoint: hub.url, token: TOKEN });
    expect(res.source).toBe('hub-download');
    expect(readFileSync(path.join(res.dir, 'model.safetensors')).equals(readFileSync(fixture('model.safetensors')))).toBe(true);
    const repoRequests = hub.requests.filter((r) => !r.path.startsWith('/cdn/'));
    expect(repoRequests.length).toBeGreaterThan(3);
    expect(repoRequests.every((r) => r.authorization === `Bearer ${TOKEN}`)).toBe(true);

    // HF_TOKEN and HF_ENDPOINT from the environment, into a fresh cache.
    process.env['HF_TOKEN'] = TOKEN;
    process.env['HF_ENDPOINT'] = `${hub.url}/`;
    const viaEnv = await resolveModelSource('edgeq-test/private', { cacheDir: path.join(tmp, 'other-cache') });
    expect(viaEnv.source).toBe('hub-download');
    expect(viaEnv.dir.startsWith(path.join(tmp, 'other-cache', 'models--edgeq-test--private'))).toBe(true);
  });

  it('honours @revision (branch and pinned commit) and hf://', async () => {
    const v2 = await resolveModelSource(`hf://${REPO}@v2`, { endpoint: hub.url });
    const commitV2 = hub.commitOf(REPO, 'v2');
    expect(v2).toMatchObject({ source: 'hub-download', repo: REPO, revision: 'v2', commit: commitV2 });
    expect(commitV2).not.toBe(hub.commitOf(REPO, 'main'));
    expect(readFileSync(path.join(v2.dir, 'config.json')).equals(V2_CONFIG)).toBe(true);
    expect(readdirSync(v2.dir).sort()).toEqual(['config.json', 'model.safetensors', 'tokenizer.json']);
    expect(readFileSync(path.join(storageOf(REPO), 'refs', 'v2'), 'utf8')).toBe(commitV2);
    expect(existsSync(path.join(storageOf(REPO), 'refs', 'main'))).toBe(false);

    const main = await resolveModelSource(REPO, { endpoint: hub.url });
    expect(main.commit).toBe(hub.commitOf(REPO, 'main'));
    expect(readFileSync(path.join(main.dir, 'config.json')).equals(readFileSync(fixture('config.json')))).toBe(true);

    // A cached commit id never needs the network.
    await stopHub();
    const pinned = await resolveModelSource(`${REPO}@${commitV2}`, { endpoint: hub.url });
    expect(pinned).toEqual({ dir: v2.dir, source: 'hub-cache', repo: REPO, revision: commitV2, commit: commitV2 });
  });

  it('downloads the shards named by model.safetensors.index.json, nothing else', async () => {
    const events: ModelSourceProgress[] = [];
    const res = await resolveModelSource('edgeq-test/sharded', { endpoint: hub.url, onProgress: (p) => events.push(p) });
    expect(readdirSync(res.dir).sort()).toEqual([
      'config.json',
      'model-00001-of-00002.safetensors',
      'model-00002-of-00002.safetensors',
      'model.safetensors.index.json',
    ]);
    expect(readFileSync(path.join(res.dir, 'model-00002-of-00002.safetensors')).equals(SHARD_B)).toBe(true);
    expect(events.at(-1)).toMatchObject({ fileIndex: 3, fileCount: 4 });
  });

  it('a repo without safetensors weights is a clear HubError', async () => {
    const err = await rejection(resolveModelSource('edgeq-test/bin-only', { endpoint: hub.url }));
    expect(err).toBeInstanceOf(HubError);
    expect(err.code).toBe('E_HUB_NO_SAFETENSORS');
    expect(err.message).toContain('pytorch_model.bin');
  });

  it('never keeps a partially downloaded file as complete', async () => {
    hub.faults.truncate.add('model.safetensors');
    const err = await rejection(resolveModelSource(REPO, { endpoint: hub.url }));
    expect(err).toBeInstanceOf(HubError);
    expect(err.code).toBe('E_HUB_DOWNLOAD_INTERRUPTED');

    const storage = storageOf(REPO);
    const modelBlob = sha256(readFileSync(fixture('model.safetensors')));
    const blobs = readdirSync(path.join(storage, 'blobs'));
    expect(blobs).not.toContain(modelBlob);
    expect(blobs).toContain(`${modelBlob}.incomplete`); // the library's temp name; never renamed
    expect(existsSync(path.join(storage, 'refs', 'main'))).toBe(false);
    const offline = await rejection(resolveModelSource(REPO, { endpoint: hub.url, offline: true }));
    expect(offline.code).toBe('E_HUB_OFFLINE');
    // Even a ref pointing at the half-filled snapshot (as other tools write refs first) is not used.
    mkdirSync(path.join(storage, 'refs'), { recursive: true });
    writeFileSync(path.join(storage, 'refs', 'main'), hub.commitOf(REPO, 'main'));
    expect(readdirSync(path.join(storage, 'snapshots', hub.commitOf(REPO, 'main')))).toContain('config.json');
    expect((await rejection(resolveModelSource(REPO, { endpoint: hub.url, offline: true }))).code).toBe('E_HUB_OFFLINE');

    hub.faults.truncate.clear();
    const res = await resolveModelSource(REPO, { endpoint: hub.url });
    expect(res.source).toBe('hub-download');
    expect(readFileSync(path.join(res.dir, 'model.safetensors')).equals(readFileSync(fixture('model.safetensors')))).toBe(true);
    expect(readdirSync(path.join(storage, 'blobs'))).toContain(modelBlob);
  });
});

describe('resolveModelSource: local paths and spec validation', () => {
  it('an existing local folder wins over a same-named hub id', async () => {
    const work = path.join(tmp, 'cwd');
    mkdirSync(path.join(work, 'edgeq-test'), { recursive: true });
    cpSync(SRC, path.join(work, REPO), { recursive: true });
    const cwd = process.cwd();
    process.chdir(work);
    try {
      const res = await resolveModelSource(REPO, { endpoint: hub.url });
      expect(res).toEqual({ dir: path.join(work, REPO), source: 'local' });
    } finally {
      process.chdir(cwd);
    }
    expect(await resolveModelSource(SRC, { endpoint: hub.url })).toEqual({ dir: SRC, source: 'local' });
    expect(hub.requests).toHaveLength(0);
  });

  it('rejects files, missing paths and malformed ids', async () => {
    const file = path.join(tmp, 'model.safetensors');
    writeFileSync(file, 'x');
    const isFile = await rejection(resolveModelSource(file));
    expect(isFile).toBeInstanceOf(UsageError);
    expect(isFile.code).toBe('E_MODEL_NOT_A_FOLDER');

    for (const spec of ['./no-such-dir', path.join(tmp, 'nope'), 'a/b/c', 'just-a-name']) {
      const err = await rejection(resolveModelSource(spec, { endpoint: hub.url }));
      expect(err, spec).toBeInstanceOf(MissingFileError);
      expect(err.message).toContain('no such folder');
    }
    for (const spec of ['hf://bad--org/name', 'hf://org/na me', 'org/-name', 'hf://org/name@', 'org/name@../x', 'hf://only-name']) {
      const err = await rejection(resolveModelSource(spec, { endpoint: hub.url }));
      expect(err, spec).toBeInstanceOf(UsageError);
    }
    expect(hub.requests).toHaveLength(0);
  });
});
