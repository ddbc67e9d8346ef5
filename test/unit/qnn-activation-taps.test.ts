/**
 * The activation encodings name the right tensors: the graph is built with every tap tensor
 * (LlamaGraphInfo.taps) as an extra graph output, onnxruntime-node runs calibration sequences, and the
 * min/max it sees at each named tensor equal the ranges collectActivationRanges measures at the
 * corresponding point of edgeq's forward (a mis-mapped name — e.g. the attention output vs the residual
 * stream — would differ by far more than float rounding).
 */
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GraphBuilder, INLINE_SINK } from '../../src/formats/onnx/graph-builder.js';
import { buildLlamaGraph, pastKeyName, pastValueName } from '../../src/formats/onnx/llama-graph.js';
import { encodeModel } from '../../src/formats/onnx/onnx-model.js';
import { collectActivationRanges } from '../../src/formats/qnn/activation-ranges.js';
import type { MatmulBackend } from '../../src/kernels/backend.js';
import { createWasmBackend } from '../../src/kernels/wasm-backend.js';
import { loadModel } from '../../src/model/load-model.js';
import { readModelConfig } from '../../src/model/model-dir.js';
import { openWeightSource } from '../../src/model/weight-source.js';
import { FIXTURE_MODELS } from '../helpers/fixtures.js';
import { seededRng } from '../helpers/upstream-unpack.js';

let backend: MatmulBackend;
beforeAll(async () => {
  backend = await createWasmBackend({ threads: 1 });
});
afterAll(async () => backend?.dispose());

describe('activation taps', () => {
  it('stories260K: onnxruntime ranges at every tap tensor = edgeq forward ranges', async () => {
    const dir = FIXTURE_MODELS.stories260K;
    const { config: c } = readModelConfig(dir);
    const src = await openWeightSource(dir);
    const g = new GraphBuilder(INLINE_SINK);
    let info;
    try {
      info = await buildLlamaGraph(g, c, src, { maxPositions: 64 });
    } finally {
      await src.close();
    }
    const outputs = new Set(g.outputs.map((o) => o.name));
    for (const t of Object.values(info.taps)) if (!outputs.has(t)) g.output(t, 'FLOAT', null);
    const bytes = encodeModel({ irVersion: 8, opsets: [{ domain: '', version: 17 }, { domain: 'com.microsoft', version: 1 }], producerName: 'test', producerVersion: '0', graph: g.graph('taps'), metadata: {} });
    const sess = await ort.InferenceSession.create(bytes, { intraOpNumThreads: 1 });
    const rnd = seededRng(9);
    const seqs = Array.from({ length: 2 }, () => Array.from({ length: 20 }, () => 3 + Math.floor(rnd() * (c.vocabSize - 3))));
    const ortRanges = new Map<string, { min: number; max: number }>();
    try {
      for (const ids of seqs) {
        const T = ids.length;
        const feeds: Record<string, ort.Tensor> = {
          input_ids: new ort.Tensor('int64', BigInt64Array.from(ids.map(BigInt)), [1, T]),
          attention_mask: new ort.Tensor('int64', new BigInt64Array(T).fill(1n), [1, T]),
          position_ids: new ort.Tensor('int64', BigInt64Array.from({ length: T }, (_, i) => BigInt(i)), [1, T]),
        };
        for (let l = 0; l < c.numLayers; l++) {
          feeds[pastKeyName(l)] = new ort.Tensor('float32', new Float32Array(0), [1, c.numKvHeads, 0, c.headDim]);
          feeds[pastValueName(l)] = new ort.Tensor('float32', new Float32Array(0), [1, c.numKvHeads, 0, c.headDim]);
        }
        const out = await sess.run(feeds);
        for (const [key, tensor] of Object.entries(info.taps)) {
          const data = out[tensor].data as Float32Array;
          const r = ortRanges.get(key) ?? { min: Infinity, max: -Infinity };
          for (const v of data) {
            r.min = Math.min(r.min, v);
            r.max = Math.max(r.max, v);
          }
          ortRanges.set(key, r);
        }
      }
    } finally {
      await sess.release();
    }
    const model = await loadModel(dir, backend);
    const ranges = collectActivationRanges(model, seqs);
    model.dispose();
    expect([...ranges.keys()].sort()).toEqual(Object.keys(info.taps).sort());
    for (const [key, r] of ranges) {
      const o = ortRanges.get(key)!;
      const span = r.max - r.min;
      expect(span, key).toBeGreaterThan(0);
      expect(Math.abs(o.min - r.min) / span, `${key} min`).toBeLessThan(1e-4);
      expect(Math.abs(o.max - r.max) / span, `${key} max`).toBeLessThan(1e-4);
    }
  });
});
