/**
 * Resume for every method and layout, in-process on stories260K (5 blocks): a run stopped after its
 * second block (shouldStop → QuantizeInterrupted, the partial output kept) and resumed yields the same
 * files as an uninterrupted run — RTN (no activations journaled), AWQ (its per-block reports restored),
 * GPTQ written as AutoGPTQ (8-bit, per channel) — and the resumed report holds every layer, the skipped ones included.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadCalibrationText, sampleCalibration } from '../../src/calib/calibration.js';
import { BUNDLED } from '../../src/core/paths.js';
import { partialDirFor } from '../../src/formats/edgeq/atomic-dir.js';
import { createWasmBackend } from '../../src/kernels/wasm-backend.js';
import type { MatmulBackend } from '../../src/kernels/backend.js';
import { readModelConfig } from '../../src/model/model-dir.js';
import { quantizeModel, type QuantizeRequest } from '../../src/pipeline/quantize-model.js';
import { QuantizeInterrupted } from '../../src/pipeline/resume/interrupted.js';
import { EdgeqTokenizer } from '../../src/tokenizer/tokenizer.js';

const dir = BUNDLED.models.stories260K!;
const { config } = readModelConfig(dir);
let tmp: string;
let backend: MatmulBackend;
beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'edgeq-resume-methods-'));
  backend = await createWasmBackend({ threads: 1 });
});
afterAll(async () => {
  await backend.dispose();
  fs.rmSync(tmp, { recursive: true, force: true });
});

function request(name: string, method: 'rtn' | 'awq' | 'gptq', format: 'edgeq' | 'autogptq', extra: Partial<QuantizeRequest> = {}): QuantizeRequest {
  const tok = EdgeqTokenizer.load(dir, config.bosTokenId, config.eosTokenIds);
  const calibration = method === 'rtn' ? null : sampleCalibration(tok, loadCalibrationText('brown'), { samples: 4, seqLen: 64, seed: 0 });
  return {
    method,
    grid: { bits: format === 'autogptq' ? 8 : 4, groupSize: format === 'autogptq' ? -1 : 32, sym: false }, // AutoGPTQ: 172 wide needs 8-bit
    fallback: true,
    denseDtype: format === 'autogptq' ? 'F16' : 'F32',
    format,
    calib: { samples: 4, seqLen: 64 },
    modelDir: dir,
    config,
    outDir: path.join(tmp, name),
    calibration,
    backend,
    edgeqVersion: '0.0.0-test',
    ...extra,
  };
}

const files = (d: string) => new Map(fs.readdirSync(d).sort().map((n) => [n, fs.readFileSync(path.join(d, n))]));

describe('resume after a stop, per method', () => {
  for (const [method, format] of [['rtn', 'edgeq'], ['awq', 'edgeq'], ['gptq', 'autogptq']] as const) {
    it(`${method} → ${format}: stopped after block 2 of 5, resumed to the same bytes`, async () => {
      const ref = await quantizeModel(request(`${method}-ref`, method, format));
      expect(ref.resume.skippedBlocks).toBe(0);
      const journaled: number[] = [];
      const stop = await quantizeModel(
        request(`${method}-cut`, method, format, { shouldStop: () => journaled.length >= 2, onJournaled: (d) => journaled.push(d) }),
      ).catch((e: unknown) => e);
      expect(stop).toBeInstanceOf(QuantizeInterrupted);
      expect(stop).toMatchObject({ blocksDone: 2, blocks: 5 });
      expect(fs.readdirSync(partialDirFor(path.join(tmp, `${method}-cut`))).sort()).toContain('edgeq-resume.json');
      const resumed = await quantizeModel(request(`${method}-cut`, method, format, { resume: true }));
      expect(resumed.resume.skippedBlocks).toBe(2);
      expect(resumed.layers.map((l) => [l.name, l.relWeightError])).toEqual(ref.layers.map((l) => [l.name, l.relWeightError]));
      expect(resumed.awq).toEqual(ref.awq);
      const a = files(path.join(tmp, `${method}-cut`));
      const b = files(path.join(tmp, `${method}-ref`));
      expect([...a.keys()]).toEqual([...b.keys()]);
      for (const [n, bytes] of b) expect(a.get(n)!.equals(bytes), n).toBe(true);
    });
  }
});
