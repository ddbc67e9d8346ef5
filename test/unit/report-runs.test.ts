/**
 * From run folders to chart data: the tolerant eval-record reader, tensor names → (block, role), the
 * Pareto / throughput / heat-map specs built from runs (mixed bit widths included), the page on a
 * partial folder, and the errors for folders with nothing to report.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { collectRuns, type RunData } from '../../src/report/collect-runs.js';
import { parseEvalRecord } from '../../src/report/eval-record.js';
import { parseLinearName, sortRoles } from '../../src/report/layer-names.js';
import { bitAllocationSpec, layerErrorScale, layerErrorSpec, meanLinearBits, qualitySpec, throughputSpecs } from '../../src/report/report-charts.js';
import { renderReportHtml } from '../../src/report/report-html.js';

let tmp: string;
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'edgeq-report-unit-'));
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const FULL_RECORD = {
  model: '/x/rtn4',
  ctx: 64,
  baseline: { model: '/m/stories260K', windows: 2, ppl: 120, baselinePpl: 117, deltaPpl: 3, meanKl: 0.2, top1Agreement: 0.7 },
  eval: { ppl: 120, windows: 2, scoredTokens: 126, windowsAvailable: 3 },
  throughput: { promptTokens: 512, prefillTokPerSec: 500, genTokens: 128, decodeTokPerSec: 400 },
  size: { bytes: 264208, params: 260032, bitsPerWeight: 8.128 },
  peakRssBytes: 1e8,
  date: '2026-11-23T00:00:00.000Z',
  peer: { name: 'llama.cpp', prefillTokPerSec: 2500, decodeTokPerSec: 900 },
};

describe('parseEvalRecord', () => {
  it('reads every field of an eval --json record with a peer', () => {
    expect(parseEvalRecord(JSON.stringify(FULL_RECORD), 'f')).toEqual({
      date: '2026-11-23T00:00:00.000Z',
      model: '/x/rtn4',
      ctx: 64,
      windows: 2,
      ppl: 120,
      baselineModel: '/m/stories260K',
      baselinePpl: 117,
      deltaPpl: 3,
      meanKl: 0.2,
      top1Agreement: 0.7,
      prefillTokPerSec: 500,
      decodeTokPerSec: 400,
      promptTokens: 512,
      genTokens: 128,
      sizeBytes: 264208,
      params: 260032,
      bitsPerWeight: 8.128,
      peakRssBytes: 1e8,
      peer: { name: 'llama.cpp', prefillTokPerSec: 2500, decodeTokPerSec: 900 },
    });
  });

  it("reads the peer in src/peer's shape (rates with a mean) too", () => {
    const rate = (mean: number) => ({ mean, sd: 1, samples: [mean] });
    const peer = { name: 'llama.cpp', version: 'b1', threads: 2, prefill: rate(2000), decode: rate(800), promptTokens: 512, genTokens: 128 };
    expect(parseEvalRecord(JSON.stringify({ throughput: { peer } }), 'f').peer).toEqual({ name: 'llama.cpp', prefillTokPerSec: 2000, decodeTokPerSec: 800 });
    expect(parseEvalRecord(JSON.stringify({ llamaCpp: { prefill: rate(1500), decode: null } }), 'f').peer).toEqual({ name: 'llama.cpp', prefillTokPerSec: 1500 });
    expect(parseEvalRecord(JSON.stringify({ peer: { name: 'x', prefill: null, decode: null } }), 'f').peer).toBeUndefined();
  });

  it('treats missing or mistyped fields as missing, and refuses non-objects', () => {
    expect(parseEvalRecord('{"eval": {"ppl": "12"}, "throughput": null, "size": {"bytes": 10}, "peer": {"name": "x"}}', 'f')).toEqual({ sizeBytes: 10 });
    expect(parseEvalRecord('{}', 'f')).toEqual({});
    expect(() => parseEvalRecord('[1]', 'f')).toThrowError(expect.objectContaining({ code: 'E_EVAL_RECORD' }));
    expect(() => parseEvalRecord('{oops', 'f')).toThrowError(expect.objectContaining({ code: 'E_EVAL_RECORD' }));
  });
});

describe('layer names', () => {
  it('maps HF linear names to (block, role) and orders roles as data flows', () => {
    expect(parseLinearName('model.layers.12.self_attn.q_proj.weight')).toEqual({ block: 12, role: 'q' });
    expect(parseLinearName('model.layers.0.mlp.down_proj.weight')).toEqual({ block: 0, role: 'down' });
    expect(parseLinearName('lm_head.weight')).toEqual({ block: null, role: 'lm_head' });
    expect(sortRoles(['down', 'zz', 'q', 'up', 'o', 'gate', 'v', 'k', 'q'])).toEqual(['q', 'k', 'v', 'o', 'gate', 'up', 'down', 'zz']);
  });
});

const ROLES = ['self_attn.q_proj', 'self_attn.k_proj', 'mlp.down_proj'];
function fakeRun(id: string, opts: { bits: (block: number, role: number) => number; errors?: boolean; eval?: RunData['eval'] }): RunData {
  const tensors = [0, 1].flatMap((b) =>
    ROLES.map((r, ri) => ({ name: `model.layers.${b}.${r}.weight`, qtype: 'x', bits: opts.bits(b, ri) as 2 | 3 | 4 | 8, groupSize: ri === 2 ? -1 : 32, sym: false, n: 8, k: 16 * (ri + 1), actOrder: false })),
  );
  const layerErrors = opts.errors ? Object.fromEntries(tensors.map((t, i) => [t.name, 10 ** -(i % 3) * (t.bits === 2 ? 10 : 1)])) : undefined;
  return {
    id,
    dir: `/runs/${id}`,
    checkpoint: { tensors, provenance: { method: 'ladder', layerErrors }, storedBytes: 1000, params: 2000, bitsPerWeight: 4, date: 'd', dateSource: 'file time' },
    eval: opts.eval ?? null,
  };
}

describe('chart data from runs', () => {
  const ladder = fakeRun('ladder', { bits: (b, r) => [2, 4, 8][(b + r) % 3], errors: true, eval: parseEvalRecord(JSON.stringify(FULL_RECORD), 'f') });
  const noBaseline = fakeRun('nob', { bits: () => 4, eval: { ppl: 130, bitsPerWeight: 5, decodeTokPerSec: 300 } });
  const bare = fakeRun('bare', { bits: () => 3 });
  const evalOnly: RunData = { id: 'evalonly', dir: '/runs/evalonly', checkpoint: null, eval: { deltaPpl: 1, meanKl: 0.01, bitsPerWeight: 6 } };
  const runs = [ladder, noBaseline, bare, evalOnly];

  it('one Pareto point per run with a size and the metric; the others listed with the reason', () => {
    const { spec, omitted } = qualitySpec(runs, 'deltaPpl');
    expect(spec.points.map((p) => [p.id, p.x, p.y])).toEqual([
      ['ladder', 8.128, 3],
      ['evalonly', 6, 1],
    ]);
    expect(omitted).toEqual([
      { id: 'nob', why: 'no deltaPpl (evaluated without --baseline)' },
      { id: 'bare', why: 'no eval record' },
    ]);
  });

  it('throughput: edgeq and the peer side by side, only for runs that measured it', () => {
    const { specs, peerName, omitted } = throughputSpecs(runs);
    expect(peerName).toBe('llama.cpp');
    expect(specs[1].categories).toEqual(['ladder', 'nob']);
    expect(specs[1].series.map((s) => [s.name, s.values])).toEqual([
      ['edgeq', [400, 300]],
      ['llama.cpp', [900, null]],
    ]);
    expect(specs[0].series[0].values).toEqual([500, null]);
    expect(omitted.map((o) => o.id)).toEqual(['bare', 'evalonly']);
  });

  it('bit allocation reads every tensor of a mixed (ladder) checkpoint', () => {
    const spec = bitAllocationSpec(ladder)!;
    expect(spec.rows).toEqual(['block 0', 'block 1']);
    expect(spec.cols).toEqual(['q', 'k', 'down']);
    expect(spec.cells.map((c) => `${c.row}/${c.col}=${c.value}:${c.text}`)).toEqual([
      'block 0/q=2:2·32',
      'block 0/k=4:4·32',
      'block 0/down=8:8·pc',
      'block 1/q=4:4·32',
      'block 1/k=8:8·32',
      'block 1/down=2:2·pc',
    ]);
    expect(spec.legend.map((l) => l.label)).toEqual(['2-bit', '4-bit', '8-bit']);
    // weights n·k: q 128, k 256, down 384 per block
    expect(meanLinearBits(ladder)).toBeCloseTo((2 * 128 + 4 * 256 + 8 * 384 + 4 * 128 + 8 * 256 + 2 * 384) / (2 * 768), 12);
    expect(bitAllocationSpec(evalOnly)).toBeNull();
  });

  it('layer errors share one colour scale across runs (log when they span > 10×)', () => {
    const scale = layerErrorScale(runs);
    expect(scale.log).toBe(true);
    const spec = layerErrorSpec(ladder, scale)!;
    expect(spec.cells).toHaveLength(6);
    const byValue = [...spec.cells].sort((a, b) => a.value - b.value);
    expect(byValue[0].fill).toBe(scale.legend[0].fill); // smallest error = bottom of the scale
    expect(byValue.at(-1)!.fill).toBe(scale.legend.at(-1)!.fill);
    expect(layerErrorSpec(bare, scale)).toBeNull();
  });

  it('renders a page for a partial folder that says what is missing and fetches nothing', () => {
    const html = renderReportHtml({ runDir: '/runs', runs, skipped: ['/runs/fp16'] }, { generatedAt: new Date(0), edgeqVersion: '9.9.9' });
    expect(html).toContain('1970-01-01T00:00:00.000Z');
    expect(html).toContain('no edgeq-eval.json: run &#39;edgeq eval --model /runs/bare --baseline &lt;original model&gt;&#39;');
    expect(html).toContain('not an edgeq checkpoint');
    expect(html).toContain('evaluated without --baseline');
    expect(html).toContain('/runs/fp16');
    expect(html).toContain("edgeq's WebAssembly core (pp512/tg128). The llama.cpp bars");
    // ladder errors: 10^-(i % 3) × (10 when 2-bit); the highest is a 2-bit tensor at i % 3 = 0: block 0 q (i = 0)
    expect(html).toContain('Lowest block 0 down (0.01), highest block 0 q (10).');
    expect(html.match(/<svg /g)?.length).toBe(2 + 2 + 1 + 3); // 2 Pareto, 2 throughput, 1 error map, 3 bit maps
    expect(html).not.toMatch(/<script|<img|<iframe|@import|url\(/i);
    for (const [, v] of html.matchAll(/(?:href|src)="([^"]*)"/g)) expect(v.startsWith('#') || v.startsWith('data:')).toBe(true);
  });
});

describe('collectRuns on folders', () => {
  it('refuses a missing folder and a folder with nothing usable, naming what it looked for', async () => {
    await expect(collectRuns(path.join(tmp, 'nope'))).rejects.toMatchObject({ name: 'UsageError', code: 'E_REPORT_DIR' });
    const empty = path.join(tmp, 'empty');
    fs.mkdirSync(path.join(empty, 'fp16'), { recursive: true });
    fs.writeFileSync(path.join(empty, 'fp16', 'config.json'), '{"model_type":"llama"}');
    const err = await collectRuns(empty).catch((e: unknown) => e as Error & { code: string; hint: string });
    expect(err).toMatchObject({ name: 'UsageError', code: 'E_REPORT_EMPTY' });
    expect(err.message).toContain('edgeq checkpoints');
    expect(err.message).toContain('edgeq-eval.json');
    expect(err.message).toContain('fp16');
    expect(err.hint).toContain('edgeq quantize');
  });

  it('keeps runs whose files are unreadable, with the error, and finds runs two levels down', async () => {
    const dir = path.join(tmp, 'partial');
    const broken = path.join(dir, 'a', 'broken-ckpt');
    fs.mkdirSync(broken, { recursive: true });
    fs.writeFileSync(path.join(broken, 'config.json'), JSON.stringify({ model_type: 'llama', quantization_config: { quant_method: 'edgeq' } }));
    fs.writeFileSync(path.join(broken, 'model.safetensors'), 'garbage');
    const evalOnlyDir = path.join(dir, 'b');
    fs.mkdirSync(evalOnlyDir);
    fs.writeFileSync(path.join(evalOnlyDir, 'edgeq-eval.json'), JSON.stringify(FULL_RECORD));
    const badRecord = path.join(dir, 'c');
    fs.mkdirSync(badRecord);
    fs.writeFileSync(path.join(badRecord, 'edgeq-eval.json'), '{"truncated": ');
    const { runs } = await collectRuns(dir);
    expect(runs.map((r) => r.id)).toEqual(['a/broken-ckpt', 'b', 'c']);
    expect(runs[0].checkpoint).toBeNull();
    expect(runs[0].checkpointError).toMatch(/model\.safetensors/);
    expect(runs[1].eval?.deltaPpl).toBe(3);
    expect(runs[2].evalError).toMatch(/not valid JSON/);
    expect((await collectRuns(evalOnlyDir)).runs.map((r) => r.id)).toEqual(['b']); // RUN_DIR is itself the run
    const html = renderReportHtml({ runDir: dir, runs, skipped: [] }, { generatedAt: new Date(0), edgeqVersion: 'x' });
    expect(html).toContain('checkpoint unreadable');
    expect(html).toContain('eval record unreadable');
  });
});

describe('runs compared with different baselines', () => {
  it('get one Pareto chart per baseline', () => {
    const mk = (id: string, baselineModel: string, deltaPpl: number): RunData => ({ id, dir: `/r/${id}`, checkpoint: null, eval: { baselineModel, deltaPpl, bitsPerWeight: 4 } });
    const runs = [mk('a', '/m/brown-llama-7m', 1), mk('b', '/m/stories260K', 2), mk('c', '/m/brown-llama-7m', 3)];
    const html = renderReportHtml({ runDir: '/r', runs, skipped: [] }, { generatedAt: new Date(0), edgeqVersion: 'x' });
    const points = (chart: string) => [...html.matchAll(new RegExp(`data-chart="${chart}"[\\s\\S]*?</svg>`, 'g'))].flatMap((m) => [...m[0].matchAll(/<circle [^>]*data-run="([^"]+)"/g)].map((c) => c[1]));
    expect(points('pareto-deltaPpl-brown-llama-7m')).toEqual(['a', 'c']);
    expect(points('pareto-deltaPpl-stories260K')).toEqual(['b']);
    expect(html).toContain('2 different baselines');
  });
});
