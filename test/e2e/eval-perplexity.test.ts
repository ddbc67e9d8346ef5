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
