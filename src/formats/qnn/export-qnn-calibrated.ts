/**
 * The QNN export with its activation statistics measured here: calibration token rows (bundled Brown text
 * or the user's, seeded, as `edgeq quantize` samples them) run through edgeq's forward on the checkpoint's
 * dequantized weights, their per-tap min/max become the 16-bit activation encodings of exportQnnOnnx.
 */
import { loadCalibrationText } from '../../calib/calibration.js';
import { sampleCalibration } from '../../calib/sample.js';
import type { MatmulBackend } from '../../kernels/backend.js';
import { loadModel } from '../../model/load-model.js';
import { readModelConfig } from '../../model/model-dir.js';
import { EdgeqTokenizer } from '../../tokenizer/tokenizer.js';
import { collectActivationRanges } from './activation-ranges.js';
import { refuseLowRank } from '../../export/lowrank-source.js';
import { openWeightSource } from '../../model/weight-source.js';
import { exportQnnOnnx, type QnnExportOptions, type QnnExportResult } from './export-qnn.js';

export interface CalibratedQnnExportOptions extends Omit<QnnExportOptions, 'activationRanges'> {
  backend: MatmulBackend;
  /** Calibration text: a bundled name ('brown') or a file (default 'brown'). */
  calib?: string;
  samples?: number;
  seqLen?: number;
  seed?: number;
}

export async function exportQnnCalibrated(o: CalibratedQnnExportOptions): Promise<QnnExportResult & { calibration: { rows: number; seqLen: number; source: string } }> {
  const { config } = readModelConfig(o.modelDir);
  if (!o.allowRequantize) {
    // refuse low-rank linears before the calibration forward passes (exportOnnx would, after them)
    const src = await openWeightSource(o.modelDir, { checkFinite: false });
    try {
      refuseLowRank('qnn', src, 'quantize it to int4 for its LPBQ encoding');
    } finally {
      await src.close();
    }
  }
  const seqLen = Math.min(o.seqLen ?? 128, config.maxPositionEmbeddings);
  const tok = EdgeqTokenizer.load(o.modelDir, config.bosTokenId, config.eosTokenIds);
  const cal = sampleCalibration(tok, loadCalibrationText(o.calib ?? 'brown'), { samples: o.samples ?? 16, seqLen, seed: o.seed ?? 0 });
  const rows = Array.from({ length: cal.n }, (_, i) => Array.from(cal.ids.subarray(i * cal.seqLen, (i + 1) * cal.seqLen)));
  const model = await loadModel(o.modelDir, o.backend, { quantized: 'dequantized' });
  let ranges;
  try {
    ranges = collectActivationRanges(model, rows);
  } finally {
    model.dispose();
  }
  const res = await exportQnnOnnx({ ...o, activationRanges: ranges });
  return { ...res, calibration: { rows: cal.n, seqLen: cal.seqLen, source: cal.source.name } };
}
