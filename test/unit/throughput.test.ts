import { describe, expect, it } from 'vitest';
import { measureThroughput, summarizeRates } from '../../src/eval/throughput.js';
import type { LlamaModel } from '../../src/infer/llama-model.js';
import { KvCache } from '../../src/infer/kv-cache.js';

/** A stand-in model that records what the benchmark asks of it. */
function recordingModel(maxPos = 1024) {
  const calls: { tokens: number; cacheLength: number; mode: string }[] = [];
  const model = {
    config: { vocabSize: 50, maxPositionEmbeddings: maxPos, numLayers: 1, numKvHeads: 1, headDim: 2 },
    backend: { threads: 3 },
    createCache: (cap: number) => new KvCache(1, 1, 2, cap),
    forward(ids: ArrayLike<number>, cache: KvCache, mode: string) {
      for (let i = 0; i < ids.length; i++) expect(ids[i]).toBeGreaterThanOrEqual(0), expect(ids[i]).toBeLessThan(50);
      cache.ensureRoom(ids.length);
      calls.push({ tokens: ids.length, cacheLength: cache.length, mode });
      cache.length += ids.length;
      return null;
    },
  };
  return { model: model as unknown as LlamaModel, calls };
}

describe('throughput', () => {
  it('pp runs one batch per repetition from an empty cache; tg runs single tokens', async () => {
    const { model, calls } = recordingModel();
    const r = await measureThroughput(model, { promptTokens: 64, genTokens: 5, reps: 2 });
    const pp = calls.filter((c) => c.tokens === 64);
    expect(pp).toHaveLength(3); // warm-up + 2
    expect(pp.every((c) => c.cacheLength === 0 && c.mode === 'last')).toBe(true);
    const tg = calls.filter((c) => c.tokens === 1);
    expect(tg).toHaveLength(15);
    expect(tg.map((c) => c.cacheLength).slice(0, 5)).toEqual([0, 1, 2, 3, 4]);
    expect(r.prefill!.samples).toHaveLength(2);
    expect(r.decode!.samples).toHaveLength(2);
    expect(r.threads).toBe(3);
  });

  it('refuses tests longer than the model positions', async () => {
    const { model } = recordingModel(32);
    await expect(measureThroughput(model, { promptTokens: 64, genTokens: 0, reps: 1 })).rejects.toThrow(/max_position_embeddings/);
  });

  it('mean and sample sd', () => {
    const r = summarizeRates([10, 12, 14]);
    expect(r.mean).toBe(12);
    expect(r.sd).toBeCloseTo(2, 12);
    expect(summarizeRates([5]).sd).toBe(0);
  });
});
