/**
 * The quantization pipeline's streamed embedding pass (src/pipeline/activations.ts streamEmbedding) against
 * the whole-table reference (embedCalibration on readF32): the same calibration activations, and the bands
 * handed to the writer concatenate to the tensor — on the bundled brown-llama-7m, with bands that do not
 * divide the vocabulary.
 */
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { PACKAGE_ROOT } from '../../src/core/paths.js';
import { SafetensorsCheckpoint } from '../../src/formats/safetensors/checkpoint.js';
import { embedCalibration, streamEmbedding } from '../../src/pipeline/activations.js';

const NAME = 'model.embed_tokens.weight';

describe('streamEmbedding', () => {
  it('gathers the calibration rows and streams every band, = the whole-table reference', async () => {
    const ckpt = await SafetensorsCheckpoint.open(path.join(PACKAGE_ROOT, 'fixtures/models/brown-llama-7m'));
    try {
      const info = ckpt.info(NAME);
      const [vocab, d] = info.shape as [number, number];
      const table = await ckpt.readF32(NAME);
      const n = 3;
      const T = 50;
      // every row once or more, the first and last rows included, in no particular order
      const ids = Int32Array.from({ length: n * T }, (_, i) => (i === 0 ? vocab - 1 : i === 1 ? 0 : (i * 7919) % vocab));
      const want = embedCalibration(table, ids, n, T, d);
      for (const bandRows of [997, 4096, vocab + 5]) {
        const bands: Float32Array[] = [];
        const acts = await streamEmbedding(ckpt, NAME, d, { ids, n, T }, async (b) => void bands.push(b.slice()), bandRows * d * 4);
        expect(acts!.data).toEqual(want.data);
        expect([acts!.n, acts!.T, acts!.d]).toEqual([n, T, d]);
        const all = new Float32Array(vocab * d);
        let off = 0;
        for (const b of bands) {
          all.set(b, off);
          off += b.length;
        }
        expect(off).toBe(vocab * d);
        let differ = 0; // (toEqual on millions of elements is far too slow)
        for (let i = 0; i < table.length; i++) if (!Object.is(all[i], table[i])) differ++;
        expect(differ).toBe(0);
        expect(bands.length).toBe(Math.ceil(vocab / bandRows));
      }
      // without calibration (RTN): only the bands
      let count = 0;
      expect(await streamEmbedding(ckpt, NAME, d, null, async (b) => void (count += b.length))).toBeNull();
      expect(count).toBe(vocab * d);
    } finally {
      await ckpt.close();
    }
  });
});
