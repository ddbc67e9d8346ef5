/**
 * `edgeq eval --ctx 256 --max-windows 16 --json` against the float64 reference: per-window mean NLL within
 * 1e-3 absolute, perplexity of those windows within 0.1 %, and the window count of the whole text equal to
 * the reference's (same tokenization, same protocol). The full-text run is `npm run bench:ppl`.
 */
import { describe, expect, it } from 'vitest';
import { FIXTURE_MODELS, FIXTURE_REFERENCE } from '../helpers/fixtures.js';
import { loadReference } from '../helpers/reference.js';
import { runCli } from '../helpers/run-cli.js';

const WINDOWS = 16;

describe.each([
  { name: 'stories260K', dir: FIXTURE_MODELS.stories260K, ref: FIXTURE_REFERENCE.stories260K },
  { name: 'brown-llama-7m', dir: FIXTURE_MODELS.brownLlama7m, ref: FIXTURE_REFERENCE.brownLlama7m },
])('edgeq eval $name', ({ dir, ref: refBase }) => {
  it(`matches the reference on the first ${WINDOWS} WikiText-2 windows`, async () => {
    const { ref } = loadReference(refBase);
    const run = await runCli(['eval', '--model', dir, '--ctx', '256', '--max-windows', String(WINDOWS), '--json', '--threads', '2']);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const res = JSON.parse(run.stdout);
    expect(res.ctx).toBe(256);
    expect(res.eval.windows).toBe(WINDOWS);
    expect(res.eval.windowsAvailable).toBe(ref.eval.windows);
    expect(res.eval.scoredTokens).toBe(WINDOWS * 255);
    const expected = ref.eval.window_mean_nll.slice(0, WINDOWS);
    for (let w = 0; w < WINDOWS; w++) expect(Math.abs(res.eval.windowMeanNll[w] - expected[w])).toBeLessThan(1e-3);
    const refPpl = Math.exp(expected.reduce((a: number, b: number) => a + b, 0) / WINDOWS);
    expect(Math.abs(res.eval.ppl / refPpl - 1)).toBeLessThan(1e-3);
    expect(res.eval.prefillTokPerSec).toBeGreaterThan(0);
  });
});

describe('edgeq eval / bench report size, throughput and memory', () => {
  it('eval --json: size from the checkpoint, pp/tg throughput, peak RSS', async () => {
    const fs = await import('node:fs');
    const path = await import('node:path');
    const dir = FIXTURE_MODELS.stories260K;
    const run = await runCli(['eval', '--model', dir, '--max-windows', '2', '--json', '--threads', '1']);
    expect(run.code).toBe(0);
    const res = JSON.parse(run.stdout);
    const fileBytes = fs.readdirSync(dir).filter((f: string) => f.endsWith('.safetensors')).reduce((a: number, f: string) => a + fs.statSync(path.join(dir, f)).size, 0);
    expect(res.size.bytes).toBeLessThanOrEqual(fileBytes);
    expect(res.size.bytes).toBeGreaterThan(fileBytes - 65536); // everything but the JSON header
    expect(res.size.bitsPerWeight).toBeCloseTo((8 * res.size.bytes) / res.size.params, 9);
    expect(res.throughput.promptTokens).toBe(Math.min(512, JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8')).max_position_embeddings));
    expect(res.throughput.genTokens).toBe(128);
    expect(res.throughput.prefillTokPerSec).toBeGreaterThan(0);
    expect(res.throughput.decodeTokPerSec).toBeGreaterThan(0);
    expect(res.peakRssBytes).toBeGreaterThan(10 * 2 ** 20);
  });

  it('bench --json: pp/tg with one sample per repetition', async () => {
    const run = await runCli(['bench', '--model', FIXTURE_MODELS.stories260K, '-p', '32', '-n', '8', '-r', '2', '--json', '--threads', '1']);
    expect(run.code).toBe(0);
    const res = JSON.parse(run.stdout);
    expect(res.promptTokens).toBe(32);
    expect(res.genTokens).toBe(8);
    expect(res.prefill.samples).toHaveLength(2);
    expect(res.decode.samples).toHaveLength(2);
    expect(res.threads).toBe(1);
    expect(res.weightBytesPerToken).toBeGreaterThan(0);
  });
});

describe('edgeq eval records its result in an edgeq checkpoint folder', () => {
  it('writes edgeq-eval.json equal to the --json output', async () => {
    const fs = await import('node:fs');
    const os = await import('node:os');
    const path = await import('node:path');
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'edgeq-eval-record-'));
    try {
      const out = path.join(tmp, 'q');
      const q = await runCli(['quantize', '-m', 'stories260K', '--method', 'rtn', '--bits', '4', '-g', '32', '--fallback', '-o', out, '--quiet', '--threads', '1']);
      expect(q.code).toBe(0);
      const run = await runCli(['eval', '--model', out, '--baseline', 'stories260K', '--max-windows', '2', '--no-speed', '--json', '--threads', '1']);
      expect(run.code).toBe(0);
      const printed = JSON.parse(run.stdout);
      expect(printed.record).toBe(path.resolve(out, 'edgeq-eval.json'));
      const saved = JSON.parse(fs.readFileSync(printed.record, 'utf8'));
      const { record: _r, ...rest } = printed;
      const { date, ...savedRest } = saved;
      expect(savedRest).toEqual(rest);
      expect(Number.isNaN(Date.parse(date))).toBe(false);
      expect(saved.baseline.meanKl).toBeGreaterThan(0);
      expect(saved.baseline.entropy).toBeGreaterThan(0);
      expect(saved.baseline.baselineEntropy).toBeGreaterThan(0);
      expect(saved.baseline).not.toHaveProperty('windowNll'); // per-window arrays stay out of the report
      expect(saved.eval.ppl).toBeCloseTo(saved.baseline.ppl, 12);
      // a plain Hugging Face folder is never written into
      const hf = await runCli(['eval', '--model', 'stories260K', '--max-windows', '1', '--no-speed', '--json', '--threads', '1']);
      expect(JSON.parse(hf.stdout).record).toBeUndefined();
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  });
});
