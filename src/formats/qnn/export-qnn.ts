/**
 * The ONNX + encodings pair Qualcomm's converter takes (`qnn-onnx-converter --input_network model.onnx
 * --quantization_overrides model.encodings --act_bitwidth 16 …`): the decoder graph with float MatMul
 * weights — each quantized linear re-expressed on the LPBQ grid (lpbq.ts), so its float values are exactly
 * the W4 integers times the block scales the encodings state — plus the 1.0.0 encodings JSON: one LPBQ
 * (or PER_CHANNEL, when no LPBQ block size divides K) entry per quantized weight, and 16-bit activation
 * encodings from calibration ranges (measured with edgeq's forward on calibration token sequences, or
 * given). Dense (unquantized) weights get no entry: the converter's --weights_bitwidth / --float_fallback
 * decide them.
 */
import path from 'node:path';
import { writeFileAtomicAsync } from '../../core/atomic-write.js';
import type { WeightSource } from '../../model/weight-source.js';
import type { QuantizedWeight } from '../../qtypes/types.js';
import { exportOnnx, type OnnxExportResult } from '../onnx/export-onnx.js';
import type { OnnxWeightProvider } from '../onnx/llama-graph.js';
import type { ActivationRanges } from './activation-ranges.js';
import { activationEncoding, encodingsFile, paramEncoding, perChannelEncoding, type EncodingsFile } from './encodings.js';
import { toNpuWeight, type NpuWeight } from './npu-weight.js';

export const ENCODINGS_FILE = 'model.encodings';

export interface QnnExportOptions {
  modelDir: string;
  outDir: string;
  overwrite?: boolean;
  /** Activation ranges by tap key (collectActivationRanges); without them only param encodings are written. */
  activationRanges?: ActivationRanges | null;
  /** LPBQ block size when the checkpoint's group size is not one (default 64). */
  blockSize?: number;
  maxPositions?: number;
  producerVersion?: string;
  /**
   * Low-rank linears (edgeq): refused unless true; then each is expanded to U·V, quantized to int4 sym g64
   * (per channel where 64 does not divide k) and re-expressed on the LPBQ grid like any quantized linear.
   */
  allowRequantize?: boolean;
}

/** Grid an expanded low-rank product is quantized onto before its LPBQ fit. */
export const QNN_LOWRANK_GRID = { bits: 4, groupSize: 64, sym: true } as const;

export interface QnnWeightReport {
  /** HF weight name. */
  weight: string;
  /** ONNX initializer the encoding names ([K, N] float). */
  initializer: string;
  encType: 'LPBQ' | 'PER_CHANNEL';
  blockSize: number;
  /** Integer bit width on the device (4, or 8 for 8-bit weights: PER_CHANNEL bw 8). */
  bw: number;
  /** Device bytes of the encoded weight (npu-weight.ts npuWeightBytes). */
  bytes: number;
  /** Fraction of integers identical to edgeq's (symmetric checkpoints; 0 for asymmetric). */
  sameIntegers: number;
  /** ‖W_lpbq − W_edgeq‖ / ‖W_edgeq‖ — what re-expressing on the LPBQ grid cost. */
  relError: number;
}

export interface QnnExportResult {
  onnx: OnnxExportResult;
  encodingsFile: string;
  encodings: EncodingsFile;
  weights: QnnWeightReport[];
}

/** Wraps a weight source: quantized linears come back as the NPU stores them (npu-weight.ts); the encodings are kept for the JSON. */
function npuProvider(src: WeightSource, preferred: number, fits: Map<string, NpuWeight>): OnnxWeightProvider {
  return {
    readF32: (name) => src.readF32(name),
    async readQuantized(name: string): Promise<QuantizedWeight | null> {
      const q = await src.readQuantized(name);
      if (!q) return null;
      const w = toNpuWeight(q, name, preferred);
      fits.set(name, { ...w, lpbq: w.lpbq && { ...w.lpbq, q: new Int8Array(0) } }); // the integers are not needed for the JSON
      return w.stored;
    },
  };
}

export async function exportQnnOnnx(opts: QnnExportOptions): Promise<QnnExportResult> {
  const fits = new Map<string, NpuWeight>();
  let encodings: EncodingsFile | undefined;
  const weights: QnnWeightReport[] = [];
  const onnx = await exportOnnx({
    modelDir: opts.modelDir,
    outDir: opts.outDir,
    overwrite: opts.overwrite,
    quantized: 'dequantized',
    maxPositions: opts.maxPositions,
    producerVersion: opts.producerVersion,
    lowRank: opts.allowRequantize ? 'expand' : 'refuse',
    lowRankGrid: { ...QNN_LOWRANK_GRID },
    weights: (src) => npuProvider(src, opts.blockSize ?? 64, fits),
    beforeCommit: async (tmp, result) => {
      const params = [];
      for (const lin of result.graph.linears) {
        const f = fits.get(lin.weight);
        if (!f) continue;
        const enc = f.lpbq ? paramEncoding(lin.initializer, f.lpbq) : perChannelEncoding(lin.initializer, f.channelScale, f.bw);
        params.push(enc);
        weights.push({ weight: lin.weight, initializer: lin.initializer, encType: enc.enc_type, blockSize: f.lpbq ? f.lpbq.blockSize : f.stored.k, bw: f.bw, bytes: f.bytes, sameIntegers: f.fit ? f.fit.sameIntegers : 1, relError: f.fit ? f.fit.relError : 0 });
      }
      const acts = [];
      for (const [key, tensor] of Object.entries(result.graph.taps)) {
        const r = opts.activationRanges?.get(key);
        if (r) acts.push(activationEncoding(tensor, r));
      }
      encodings = encodingsFile(params, acts);
      await writeFileAtomicAsync(path.join(tmp, ENCODINGS_FILE), `${JSON.stringify(encodings, null, 1)}\n`);
    },
  });
  return { onnx, encodingsFile: path.join(onnx.outDir, ENCODINGS_FILE), encodings: encodings!, weights };
}
