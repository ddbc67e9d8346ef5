/**
 * The same core runs in a browser: headless Chromium (Debian's /usr/bin/chromium through playwright-core;
 * `.ci/run` installs it) loads build/kernels.wasm and the compiled modules of dist/ (dist/browser/core.js,
 * no bundler, no Node.js imports on that path), reads a 4-bit edgeq checkpoint of stories260K from bytes
 * and generates greedy tokens with the packed low-bit kernels — the same tokens as Node on one thread.
 * The page is served from a loopback server with COOP/COEP headers (shared wasm memory needs a
 * cross-origin-isolated page) and may request nothing but these files.
 */
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createWasmBackend } from '../../src/kernels/wasm-backend.js';
import { generateGreedy } from '../../src/infer/generate.js';
import { loadModel } from '../../src/model/load-model.js';
import { readModelConfig } from '../../src/model/model-dir.js';
import { EdgeqTokenizer } from '../../src/tokenizer/tokenizer.js';
import { runCli } from '../helpers/run-cli.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const CHROMIUM = '/usr/bin/chromium';
const PROMPT = 'Once upon a time, there was a little';
const NEW_TOKENS = 24;

let tmp: string;
let server: http.Server;
let base: string;
const requested: string[] = [];

const PAGE = `<!doctype html><meta charset="utf-8"><title>edgeq core</title>
<script type="module">
  const q = new URLSearchParams(location.search);
  try {
    const { createCore } = await import('/dist/browser/core.js');
    const core = await createCore(await (await fetch('/build/kernels.wasm')).arrayBuffer());
    const config = await (await fetch('/model/config.json')).json();
    const bytes = new Uint8Array(await (await fetch('/model/model.safetensors')).arrayBuffer());
    const model = await core.loadModel(config, bytes);
    const ids = core.generate(model, JSON.parse(q.get('prompt')), { maxNewTokens: Number(q.get('n')) });
    window.__result = { ids, isolated: crossOriginIsolated };
  } catch (e) {
    window.__result = { error: String(e && e.stack || e) };
  }
</script>`;

function serve(modelDir: string): Promise<void> {
  server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    requested.push(url.pathname);
    let file: string | null = null;
    let type = 'application/octet-stream';
    if (url.pathname === '/favicon.ico') {
      res.writeHead(204);
      res.end();
      return;
    }
    if (url.pathname === '/') {
      res.writeHead(200, { 'content-type': 'text/html', 'cross-origin-opener-policy': 'same-origin', 'cross-origin-embedder-policy': 'require-corp' });
      res.end(PAGE);
      return;
    }
    const distFile = path.resolve(ROOT, `.${url.pathname}`);
    if (url.pathname.startsWith('/dist/') && url.pathname.endsWith('.js') && distFile.startsWith(path.join(ROOT, 'dist') + path.sep)) [file, type] = [distFile, 'text/javascript'];
    else if (url.pathname === '/build/kernels.wasm') [file, type] = [path.join(ROOT, 'build/kernels.wasm'), 'application/wasm'];
    else if (url.pathname === '/model/config.json') [file, type] = [path.join(modelDir, 'config.json'), 'application/json'];
    else if (url.pathname === '/model/model.safetensors') file = path.join(modelDir, 'model.safetensors');
    if (!file || !fs.existsSync(file)) {
      res.writeHead(404);
      res.end();
      return;
    }
    res.writeHead(200, { 'content-type': type, 'cross-origin-resource-policy': 'same-origin' });
    fs.createReadStream(file).pipe(res);
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
}

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'edgeq-browser-'));
  const q = await runCli(['quantize', '-m', 'stories260K', '--method', 'rtn', '--bits', '4', '-g', '32', '--sym', '--fallback', '-o', path.join(tmp, 'q4'), '--quiet', '--json', '--threads', '1']);
  if (q.code !== 0) throw new Error(q.stderr);
  await serve(path.join(tmp, 'q4'));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}, 120_000);

afterAll(async () => {
  await new Promise((r) => server?.close(r));
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe('the wasm core in headless Chromium', () => {
  it('generates the same greedy tokens as Node for a 4-bit stories260K', async () => {
    if (!fs.existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: run .ci/run (it apt-get installs Debian's chromium)`);
    if (!fs.existsSync(path.join(ROOT, 'dist/browser/core.js'))) throw new Error('dist/ is not built: run `npm run build` (npm install does it)');
    const dir = path.join(tmp, 'q4');
    const { config } = readModelConfig(dir);
    const tok = EdgeqTokenizer.load(dir, config.bosTokenId, config.eosTokenIds);
    const promptIds = tok.encodeWithBos(PROMPT);
    const backend = await createWasmBackend({ threads: 1 });
    const model = await loadModel(dir, backend);
    const nodeIds = generateGreedy(model, promptIds, { maxNewTokens: NEW_TOKENS });
    model.dispose();
    await backend.dispose();

    const { chromium } = await import('playwright-core');
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'] });
    try {
      const page = await browser.newPage();
      const errors: string[] = [];
      page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
      page.on('pageerror', (e) => errors.push(String(e)));
      await page.goto(`${base}/?prompt=${encodeURIComponent(JSON.stringify(promptIds))}&n=${NEW_TOKENS}`);
      await page.waitForFunction(() => (window as unknown as { __result?: unknown }).__result !== undefined, null, { timeout: 60_000 });
      const result = (await page.evaluate(() => (window as unknown as { __result: unknown }).__result)) as { ids?: number[]; isolated?: boolean; error?: string };
      expect(result.error).toBeUndefined();
      expect(result.isolated).toBe(true);
      expect(errors).toEqual([]);
      expect(result.ids).toEqual(nodeIds);
      expect(nodeIds).toHaveLength(NEW_TOKENS);
      // the text is a real continuation, not a degenerate repeat
      expect(new Set(nodeIds).size).toBeGreaterThan(4);
      expect(requested.every((p) => p === '/' || p === '/favicon.ico' || p.startsWith('/dist/') || p === '/build/kernels.wasm' || p.startsWith('/model/'))).toBe(true);
    } finally {
      await browser.close();
    }
  }, 120_000);
});
