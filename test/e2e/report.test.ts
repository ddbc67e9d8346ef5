/**
 * `edgeq report` in a real browser. A RUN_DIR of RTN checkpoints of stories260K (w2/w3/w4/w8, g32,
 * per-channel fallback) with eval records (w4 with throughput and a recorded llama.cpp peer figure,
 * w3/w8 without throughput, w2 not evaluated), a mixed-bit "ladder" checkpoint written directly, and a
 * non-edgeq model folder; then the HTML is opened in headless Chromium (Debian `chromium`, installed by
 * .ci/run) through playwright-core: no console errors, no request but the file itself, one Pareto
 * point per evaluated run, one heat-map cell per quantized linear, and a PNG screenshot.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TensorPlanEntry } from '../../src/formats/edgeq/plan.js';
import { EdgeqCheckpoint } from '../../src/formats/edgeq/reader.js';
import { EdgeqCheckpointWriter } from '../../src/formats/edgeq/writer.js';
import { paretoFront } from '../../src/report/pareto.js';
import type { WriteReportResult } from '../../src/report/index.js';
import { runCli } from '../helpers/run-cli.js';
import { randomQuantized } from '../helpers/upstream-unpack.js';

const CHROMIUM = '/usr/bin/chromium';
const RTN_BITS = [2, 3, 4, 8] as const;
const LADDER_BITS = (block: number, role: number): 2 | 3 | 4 | 8 => ([2, 3, 4, 8] as const)[(block + role) % 4];
const LADDER_ROLES = ['self_attn.q_proj', 'self_attn.o_proj', 'mlp.down_proj'];

let tmp: string;
let runDir: string;
let reportFile: string;
let result: WriteReportResult;
let browser: Browser | undefined;
let page: Page;
const consoleErrors: string[] = [];
const requests: string[] = [];

async function cli(args: string[]): Promise<string> {
  const r = await runCli(args[0] === 'report' ? args : [...args, '--threads', '1']);
  if (r.code !== 0) throw new Error(`edgeq ${args.join(' ')} exited ${r.code}:\n${r.stderr}`);
  return r.stdout;
}

/** A checkpoint whose linears use different grids per layer (the ladder's output), random codes. */
async function writeLadderCheckpoint(dir: string): Promise<void> {
  const plan: TensorPlanEntry[] = [{ kind: 'dense', name: 'model.embed_tokens.weight', shape: [16, 32], dtype: 'F16' }];
  const qs = new Map<string, ReturnType<typeof randomQuantized>>();
  const layerErrors: Record<string, number> = {};
  for (let b = 0; b < 3; b++) {
    LADDER_ROLES.forEach((role, r) => {
      const name = `model.layers.${b}.${role}.weight`;
      const bits = LADDER_BITS(b, r);
      const q = randomQuantized({ n: 8, k: 32, bits, groupSize: bits === 8 ? -1 : 16, sym: false, seed: 10 * b + r });
      plan.push({ kind: 'quantized', name, shape: [8, 32], qtype: q.qtype, grid: q.grid, actOrder: false });
      qs.set(name, q);
      layerErrors[name] = 2 ** -bits;
    });
  }
  const w = await EdgeqCheckpointWriter.create(dir, {
    plan,
    sourceConfig: { architectures: ['LlamaForCausalLM'], model_type: 'llama', hidden_size: 32 },
    provenance: { method: 'ladder', bits: 3.5, groupSize: 16, calibration: { name: 'brown', sha256: 'cd'.repeat(32), samples: 8, seqlen: 64, seed: 3 }, edgeqVersion: '0.1.0', layerErrors },
  });
  for (const e of plan) {
    if (e.kind === 'quantized') await w.writeQuantized(e.name, qs.get(e.name)!);
    else await w.writeDense(e.name, new Float32Array(16 * 32).fill(0.5));
  }
  await w.finish();
}

beforeAll(async () => {
  if (!fs.existsSync(CHROMIUM)) {
    throw new Error(`${CHROMIUM} is missing: the report test needs Debian's chromium. Run the apt-get step of .ci/run (apt-get install -y chromium) first.`);
  }
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'edgeq-report-e2e-'));
  runDir = path.join(tmp, 'runs');
  for (const bits of RTN_BITS) {
    await cli(['quantize', '-m', 'stories260K', '--method', 'rtn', '--bits', String(bits), '-g', '32', '--fallback', '-q', '-o', path.join(runDir, `rtn${bits}`)]);
  }
  const evalArgs = (name: string) => ['eval', '--model', path.join(runDir, name), '--baseline', 'stories260K', '--ctx', '64', '--max-windows', '2', '--json'];
  await cli(evalArgs('rtn4'));
  await cli([...evalArgs('rtn3'), '--no-speed']);
  await cli([...evalArgs('rtn8'), '--no-speed']);
  // A benchmark against llama.cpp adds the peer's figures to the record.
  const rec = path.join(runDir, 'rtn4', 'edgeq-eval.json');
  fs.writeFileSync(rec, JSON.stringify({ ...JSON.parse(fs.readFileSync(rec, 'utf8')), peer: { name: 'llama.cpp', prefillTokPerSec: 2345, decodeTokPerSec: 876 } }));
  await writeLadderCheckpoint(path.join(runDir, 'ladder'));
  fs.mkdirSync(path.join(runDir, 'fp16'));
  fs.writeFileSync(path.join(runDir, 'fp16', 'config.json'), '{"model_type":"llama"}');

  reportFile = path.join(tmp, 'out', 'report.html');
  result = JSON.parse(await cli(['report', runDir, '-o', reportFile, '--json'])) as WriteReportResult;

  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'] });
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  await context.route(/^(https?|wss?|ftp):/, (route) => route.abort()); // anything off the file would fail (and is recorded)
  page = await context.newPage();
  page.on('console', (m) => {
    if (m.type() === 'error') consoleErrors.push(m.text()); // CSP violations (a blocked fetch) are errors too
  });
  page.on('pageerror', (e) => consoleErrors.push(`pageerror: ${e.message}`));
  page.on('request', (r) => requests.push(r.url()));
  await page.goto(pathToFileURL(reportFile).href, { waitUntil: 'load' });
});

afterAll(async () => {
  await browser?.close();
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

const attrsOf = (selector: string, attr: string): Promise<(string | null)[]> =>
  page.$$eval(selector, (els, a) => els.map((e) => e.getAttribute(a)), attr);

describe('edgeq report RUN_DIR', () => {
  it('finds every run, says what each lacks, and skips the non-edgeq model', () => {
    expect(result.file).toBe(reportFile);
    expect(result.runs.map((r) => r.id)).toEqual(['ladder', 'rtn2', 'rtn3', 'rtn4', 'rtn8']);
    expect(result.runs.map((r) => r.evaluated)).toEqual([false, false, true, true, true]);
    expect(result.runs.find((r) => r.id === 'rtn3')!.missing).toEqual(['no throughput (evaluated with --no-speed)']);
    expect(result.runs.find((r) => r.id === 'rtn4')!.missing).toEqual([]);
    expect(result.skipped).toEqual([path.join(runDir, 'fp16')]);
  });

  it('renders in Chromium with no console errors and no request but the file itself', () => {
    expect(consoleErrors).toEqual([]);
    expect(requests).toEqual([pathToFileURL(reportFile).href]);
  });

  it('has one Pareto point per run with a baseline comparison, the front marked as computed', async () => {
    const evaluated = result.runs.filter((r) => r.deltaPpl !== undefined);
    expect(evaluated.map((r) => r.id)).toEqual(['rtn3', 'rtn4', 'rtn8']);
    for (const chart of ['pareto-deltaPpl', 'pareto-meanKl']) {
      const sel = `svg[data-chart="${chart}"] circle.pt`;
      expect(await attrsOf(sel, 'data-run'), chart).toEqual(evaluated.map((r) => r.id));
      const metric = chart === 'pareto-deltaPpl' ? 'deltaPpl' : 'meanKl';
      const expected = paretoFront(evaluated.map((r) => ({ x: r.bitsPerWeight!, y: r[metric]! })));
      expect(await attrsOf(sel, 'data-front'), chart).toEqual(expected.map(String));
    }
    // drawn, not just present: each point has a box inside the chart
    const boxes = await page.$$eval('svg[data-chart="pareto-deltaPpl"] circle.pt', (els) => els.map((e) => e.getBoundingClientRect().width));
    for (const w of boxes) expect(w).toBeGreaterThan(0);
  });

  it("shows throughput for the run that measured it, the peer's bar next to it", async () => {
    const rtn4 = result.runs.find((r) => r.id === 'rtn4')!;
    const bars = await page.$$eval('svg[data-chart="throughput-decode"] rect.bar', (els) =>
      els.map((e) => [e.getAttribute('data-category'), e.getAttribute('data-series'), Number(e.getAttribute('data-value'))]),
    );
    expect(bars).toEqual([
      ['rtn4', 'edgeq', rtn4.decodeTokPerSec],
      ['rtn4', 'llama.cpp', 876],
    ]);
    expect(await attrsOf('svg[data-chart="throughput-prefill"] rect.bar', 'data-value')).toEqual([String(rtn4.prefillTokPerSec), '2345']);
  });

  it('draws one error cell and one bits cell per quantized linear of every checkpoint, bits from edgeq.qtypes', async () => {
    for (const id of ['ladder', 'rtn2', 'rtn3', 'rtn4', 'rtn8']) {
      const ckpt = await EdgeqCheckpoint.open(path.join(runDir, id));
      try {
        const names = [...ckpt.qtypes.keys()];
        expect(names.length).toBeGreaterThan(0);
        expect(await page.locator(`svg[data-chart="layer-error-${id}"] rect.cell`).count(), id).toBe(Object.keys(ckpt.provenance!.layerErrors!).length);
        const bits = await attrsOf(`svg[data-chart="bits-${id}"] rect.cell`, 'data-value');
        expect(bits, id).toEqual(names.map((n) => String(ckpt.qtypes.get(n)!.bits)));
      } finally {
        await ckpt.close();
      }
    }
    // the ladder's mix, block by block
    const ladderBits = await attrsOf('svg[data-chart="bits-ladder"] rect.cell', 'data-value');
    expect(ladderBits).toEqual([0, 1, 2].flatMap((b) => LADDER_ROLES.map((_, r) => String(LADDER_BITS(b, r)))));
    expect(await page.locator('svg[data-chart="bits-rtn4"] rect.cell').count()).toBe(35); // 5 blocks × 7 linears
  });

  it('lists provenance per run and what is missing', async () => {
    const ladderRow = await page.locator('table.provenance tr[data-run="ladder"]').innerText();
    expect(ladderRow).toContain('ladder');
    expect(ladderRow).toContain('brown');
    expect(ladderRow).toContain('8 × 64');
    expect(await page.locator('table.provenance tr[data-run="rtn4"]').innerText()).toContain('none (data-free)');
    const missing = await page.locator('#missing').innerText();
    expect(missing).toContain('rtn2: no edgeq-eval.json');
    expect(missing).toContain('rtn8: no throughput');
  });

  it('refuses a folder with nothing to report (exit 2, what it looked for, a hint)', async () => {
    const empty = path.join(tmp, 'empty');
    fs.mkdirSync(empty);
    const r = await runCli(['report', empty]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^edgeq: nothing to report in .*edgeq checkpoints .*edgeq-eval\.json/m);
    expect(r.stderr).toMatch(/^hint: quantize into it/m);
    expect(fs.readdirSync(empty)).toEqual([]);
  });

  it('takes a full-page screenshot (a PNG with the page on it)', async () => {
    const shot = path.join(tmp, 'report.png');
    await page.screenshot({ path: shot, fullPage: true });
    const png = fs.readFileSync(shot);
    expect(png.subarray(0, 8)).toEqual(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]));
    const width = png.readUInt32BE(16);
    const height = png.readUInt32BE(20);
    expect(width).toBe(1280);
    expect(height).toBeGreaterThan(900); // the page is longer than the viewport: charts and tables rendered
    expect(png.length).toBeGreaterThan(20_000);
  });
});
