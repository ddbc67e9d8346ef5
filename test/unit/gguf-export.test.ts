/**
 * GGUF export from edgeq checkpoints and HF models: lossless repack of symmetric g32 grids (GPTQ 4-bit →
 * Q4_0, RTN 8-bit → Q8_0: the same integers and fp16 scales, the GGUF dequantizing to exactly edgeq's
 * weights), refusal / accounting of requantization, the type plan's fallbacks, tokenizer metadata and the
 * q/k row permutation.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LLAMA_LINEARS, linearWeightName } from '../../src/arch/llama-tensors.js';
import { loadCalibrationText, sampleCalibration } from '../../src/calib/calibration.js';
import { f16BitsToF32 } from '../../src/core/dtype.js';
import { UsageError } from '../../src/core/errors.js';
import { BUNDLED } from '../../src/core/paths.js';
import { exportGguf } from '../../src/export/gguf-export.js';
import { planGgufExport, type SourceTensorInfo } from '../../src/export/gguf-plan.js';
import { EdgeqCheckpoint } from '../../src/formats/edgeq/index.js';
import { llamaTensorMappings, qkRowPermutation } from '../../src/formats/gguf/llama-layout.js';
import { GgufFile } from '../../src/formats/gguf/reader.js';
import { buildGgufTokenizer } from '../../src/formats/gguf/tokenizer-metadata.js';
import type { MatmulBackend } from '../../src/kernels/backend.js';
import { createWasmBackend } from '../../src/kernels/wasm-backend.js';
import { readJsonFile, readModelConfig } from '../../src/model/model-dir.js';
import { quantizeModel } from '../../src/pipeline/quantize-model.js';
import { dequantize } from '../../src/qtypes/registry.js';
import type { GridSpec } from '../../src/qtypes/types.js';
import { EdgeqTokenizer } from '../../src/tokenizer/tokenizer.js';

const BROWN = BUNDLED.models['brown-llama-7m']!;
const STORIES = BUNDLED.models.stories260K!;
let tmp: string;
let backend: MatmulBackend;

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'edgeq-gguf-export-'));
  backend = await createWasmBackend({ threads: 1 });
});
afterAll(async () => {
  await backend?.dispose();
  fs.rmSync(tmp, { recursive: true, force: true });
});

async function quantize(name: string, grid: GridSpec, method: 'rtn' | 'gptq'): Promise<string> {
  const { config } = readModelConfig(BROWN);
  const outDir = path.join(tmp, name);
  const calibration =
    method === 'rtn' ? null : sampleCalibration(EdgeqTokenizer.load(BROWN, config.bosTokenId, config.eosTokenIds), loadCalibrationText('brown'), { samples: 4, seqLen: 64, seed: 0 });
  await quantizeModel({ method, grid, fallback: true, denseDtype: 'F32', calib: { samples: 4, seqLen: 64 }, modelDir: BROWN, config, outDir, calibration, backend, edgeqVersion: 'test' });
  return outDir;
}

/** Every quantized linear: the GGUF blocks hold edgeq's integers and fp16 scales (rows permuted for q/k), and decode to edgeq's W exactly. */
async function expectLossless(ckptDir: string, file: string, kind: 'Q4_0' | 'Q8_0'): Promise<number> {
  const { config } = readModelConfig(BROWN);
  const ck = await EdgeqCheckpoint.open(ckptDir);
  const g = await GgufFile.open(file);
  const maps = llamaTensorMappings(config);
  let checked = 0;
  try {
    for (let l = 0; l < config.numLayers; l++) {
      for (const spec of LLAMA_LINEARS) {
        const hf = linearWeightName(l, spec);
        const m = maps.find((x) => x.hf === hf)!;
        const q = await ck.readQuantized(hf);
        const t = g.tensor(m.gguf);
        expect(t.type.name).toBe(kind);
        const raw = await g.readRaw(m.gguf);
        const src = m.permuteHeads ? qkRowPermutation(q.n, m.permuteHeads) : null;
        const bs = kind === 'Q4_0' ? 18 : 34;
        for (let r = 0; r < q.n; r++) {
          const sr = src ? src[r]! : r;
          for (let gi = 0; gi < q.numGroups; gi++) {
            const o = (r * q.numGroups + gi) * bs;
            expect(f16BitsToF32(raw[o]! | (raw[o + 1]! << 8))).toBe(q.scales[sr * q.numGroups + gi]);
            for (let j = 0; j < 32; j++) {
              const code = q.codes[sr * q.k + gi * 32 + j]!;
              const stored = kind === 'Q4_0' ? (j < 16 ? raw[o + 2 + j]! & 15 : raw[o + 2 + j - 16]! >> 4) : ((raw[o + 2 + j]! << 24) >> 24) + 128;
              if (stored !== code) expect(stored, `${m.gguf} row ${r} group ${gi} element ${j}`).toBe(code);
            }
          }
        }
        const mine = await g.readF32(m.gguf);
        const ref = dequantize(q);
        for (let r = 0; r < q.n; r++) {
          const sr = src ? src[r]! : r;
          const a = mine.subarray(r * q.k, (r + 1) * q.k);
          const b = ref.subarray(sr * q.k, (sr + 1) * q.k);
          if (a.some((v, i) => !Object.is(v, b[i]))) expect(Array.from(a)).toEqual(Array.from(b));
        }
        checked++;
      }
    }
  } finally {
    await ck.close();
    await g.close();
  }
  return checked;
}

describe('lossless export of symmetric g32 edgeq grids', () => {
  it('GPTQ 4-bit sym g32 → Q4_0 with bit-identical integers and scales (default type, no flags)', async () => {
    const dir = await quantize('gptq4', { bits: 4, groupSize: 32, sym: true }, 'gptq');
    const file = path.join(tmp, 'gptq4.gguf');
    const r = await exportGguf({ modelDir: dir, out: file });
    expect(r.fileType).toBe('q4_0');
    expect(r.counts.repack).toBe(6 * 7);
    expect(r.counts.requantize).toBe(0);
    expect(r.requantize).toBeNull();
    expect(await expectLossless(dir, file, 'Q4_0')).toBe(42);
    // what the checkpoint keeps dense stays dense and exact
    const ck = await EdgeqCheckpoint.open(dir);
    const g = await GgufFile.open(file);
    try {
      expect(g.tensor('token_embd.weight').type.name).toMatch(/^F(16|32)$/);
      expect(Array.from(await g.readF32('output.weight'))).toEqual(Array.from(await ck.readDense('lm_head.weight')));
      expect(Array.from(await g.readF32('token_embd.weight'))).toEqual(Array.from(await ck.readDense('model.embed_tokens.weight')));
    } finally {
      await ck.close();
      await g.close();
    }
  }, 180_000);

  it('RTN 8-bit sym g32 → Q8_0 with bit-identical integers and scales', async () => {
    const dir = await quantize('rtn8', { bits: 8, groupSize: 32, sym: true }, 'rtn');
    const file = path.join(tmp, 'rtn8.gguf');
    const r = await exportGguf({ modelDir: dir, out: file });
    expect(r.fileType).toBe('q8_0');
    expect(r.counts.repack).toBe(42);
    expect(await expectLossless(dir, file, 'Q8_0')).toBe(42);
  }, 120_000);

  it('another grid is refused without --allow-requantize, and measured with it', async () => {
    const dir = await quantize('rtn4asym', { bits: 4, groupSize: 128, sym: false }, 'rtn');
    const file = path.join(tmp, 'asym.gguf');
    await expect(exportGguf({ modelDir: dir, out: file })).rejects.toThrow(UsageError);
    await expect(exportGguf({ modelDir: dir, out: file, type: 'q4_0' })).rejects.toMatchObject({ code: 'E_REQUANTIZE' });
    expect(fs.existsSync(file)).toBe(false);
    const r = await exportGguf({ modelDir: dir, out: file, type: 'q4_0', allowRequantize: true, originalDir: BROWN });
    expect(r.counts.requantize).toBe(42);
    const rq = r.requantize!;
    expect(rq.vsCheckpoint).toBeGreaterThan(0);
    // requantizing adds error on top of the checkpoint's own: after > before, and the warning says by how much
    expect(rq.vsOriginal!.after).toBeGreaterThan(rq.vsOriginal!.before);
    expect(r.warnings.join('\n')).toMatch(/before → .* after/);
    const g = await GgufFile.open(file);
    try {
      expect(g.tensor('blk.0.ffn_up.weight').type.name).toBe('Q4_0');
    } finally {
      await g.close();
    }
  }, 120_000);
});

describe('type plan', () => {
  const dense = (c: ReturnType<typeof readModelConfig>['config']): Map<string, SourceTensorInfo> =>
    new Map(llamaTensorMappings(c).filter((m) => m.hf).map((m) => [m.hf!, { quantized: null }]));

  it('HF models default to f16; norms stay F32; output gets Q6_K under quantized types', () => {
    const { config } = readModelConfig(BROWN);
    const f16 = planGgufExport(config, dense(config));
    expect(f16.fileType).toBe('f16');
    expect(new Set(f16.entries.filter((e) => e.dims.length === 2).map((e) => e.type.name))).toEqual(new Set(['F16']));
    const q4k = planGgufExport(config, dense(config), 'q4_k');
    const byName = new Map(q4k.entries.map((e) => [e.gguf, e]));
    expect(byName.get('output.weight')!.type.name).toBe('Q6_K');
    expect(byName.get('token_embd.weight')!.type.name).toBe('Q4_K');
    expect(byName.get('blk.0.ffn_down.weight')!.type.name).toBe('Q4_K'); // k = 768 = 3 · 256
    expect(byName.get('blk.0.attn_norm.weight')!.type.name).toBe('F32');
    expect(q4k.fileTypeId).toBe(14);
  });

  it('falls back per tensor when the row length does not fit the block (stories260K: 64 and 172)', () => {
    const { config } = readModelConfig(STORIES);
    const p = planGgufExport(config, dense(config), 'q4_k');
    const byName = new Map(p.entries.map((e) => [e.gguf, e]));
    expect(byName.get('blk.0.attn_q.weight')!.type.name).toBe('Q4_0'); // 64: not 256, but 32
    expect(byName.get('blk.0.ffn_down.weight')!.type.name).toBe('F16'); // 172: neither
    expect(byName.get('blk.0.ffn_down.weight')!.note).toMatch(/172/);
    expect(byName.get('token_embd.weight')!.type.name).toBe('Q8_0'); // tied: the output, Q6_K → Q8_0
    expect(byName.has('output.weight')).toBe(false);
  });
});

describe('tokenizer metadata', () => {
  it('SentencePiece-style fixtures: llama model, byte/control/unknown types, scores from merge ranks', () => {
    for (const dir of [BROWN, STORIES]) {
      const { config } = readModelConfig(dir);
      const tj = readJsonFile(path.join(dir, 'tokenizer.json')) as Record<string, any>;
      const t = buildGgufTokenizer({ tokenizer: tj, tokenizerConfig: null, vocabSize: config.vocabSize, bosId: 1, eosId: 2 });
      expect(t.model).toBe('llama');
      expect(t.tokens.length).toBe(config.vocabSize);
      expect(t.types[0]).toBe(2);
      expect([t.types[1], t.types[2]]).toEqual([3, 3]);
      expect(t.types[3 + 0x0a]).toBe(6);
      expect(t.tokens[3 + 0x0a]).toBe('<0x0A>');
      // the first merge's result scores highest among merged tokens, later merges lower
      const [a, b] = (tj.model.merges[0] as string[] | string) instanceof Array ? tj.model.merges[0] : String(tj.model.merges[0]).split(' ');
      const first = t.tokens.indexOf(a + b);
      expect(t.scores[first]).toBe(-0);
      const merged = t.tokens.map((x, i) => [x, t.scores[i]!] as const).filter(([x]) => x.length > 1 && !x.startsWith('<'));
      expect(merged.every(([, s]) => s <= 0)).toBe(true);
      expect(t.merges).toBeNull();
    }
  });

  it('byte-level BPE: gpt2 model with merges and a named pre-tokenizer', () => {
    const tj = {
      model: { type: 'BPE', vocab: { a: 0, b: 1, ab: 2, 'Ġ': 3 }, merges: [['a', 'b']] },
      pre_tokenizer: { type: 'Sequence', pretokenizers: [{ type: 'Split', pattern: { Regex: "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+" } }, { type: 'ByteLevel' }] },
      added_tokens: [{ id: 4, content: '<|end|>', special: true }],
    };
    const t = buildGgufTokenizer({ tokenizer: tj, tokenizerConfig: null, vocabSize: 6, bosId: null, eosId: 4 });
    expect(t.model).toBe('gpt2');
    expect(t.pre).toBe('llama-bpe');
    expect(t.merges).toEqual(['a b']);
    expect(t.tokens).toEqual(['a', 'b', 'ab', 'Ġ', '<|end|>', '[PAD5]']);
    expect(Array.from(t.types)).toEqual([1, 1, 1, 1, 3, 5]);
  });
});

describe('q/k row permutation', () => {
  it('matches convert_hf_to_gguf\'s reshape(h, 2, d/2, cols).swapaxes(1, 2) on a worked example', () => {
    // one head of 4 rows [r0 r1 | r2 r3] (rotate-half pairs (r0, r2), (r1, r3)) → interleaved [r0 r2 r1 r3]
    expect(Array.from(qkRowPermutation(4, 1))).toEqual([0, 2, 1, 3]);
    // two heads of 6 rows each
    expect(Array.from(qkRowPermutation(12, 2))).toEqual([0, 3, 1, 4, 2, 5, 6, 9, 7, 10, 8, 11]);
  });
});
