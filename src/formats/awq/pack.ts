/**
 * AutoAWQ "GEMM" tensor layout of one 4-bit quantized linear (in = K, out = N, group g):
 *
 *   qweight int32 [K, N/8]     codes packed along N, 8 per word
 *   qzeros  int32 [K/g, N/8]   zero points (stored as is, no −1), same packing
 *   scales  fp16  [K/g, N]
 *
 *   W[n, k] = scales[k // g, n] · (q[k, n] − zero[k // g, n])
 *
 * Within a word, nibble i (bits 4i..4i+3) holds logical column 8c + ORDER[i], ORDER = [0,2,4,6,1,3,5,7]
 * (the interleave AutoAWQ's GEMM kernels expect). Our codes are (n, k): the packer transposes. The
 * layout is checked against a transcription of AutoAWQ's unpack/dequantize in
 * test/helpers/upstream-unpack.ts.
 *
 * Constraints (refused with UnsupportedError): bits must be 4, N % 8 == 0, K % g == 0, no act-order
 * (AWQ has no g_idx). Symmetric grids: AutoAWQ's GEMM module always carries qzeros (its
 * zero_point=false path has no GEMM packing), so a symmetric weight is stored with explicit zero points
 * of 8 — the same dequantized values — and the checkpoint declares zero_point: true.
 */
import { encodeF16 } from '../../core/dtype.js';
import { UnsupportedError } from '../../core/errors.js';
import type { QuantizedWeight } from '../../qtypes/types.js';

export const AWQ_ORDER = [0, 2, 4, 6, 1, 3, 5, 7] as const;

export interface AwqGemmTensors {
  /** [K, N/8]. */
  qweight: Int32Array;
  /** [K/g, N/8]. */
  qzeros: Int32Array;
  /** [K/g, N] fp16 bit patterns. */
  scales: Uint16Array;
  shapes: { qweight: [number, number]; qzeros: [number, number]; scales: [number, number] };
}

/** Check a weight's grid and shape fit the AWQ GEMM layout (throws UnsupportedError with a hint). */
export function checkAwqShape(
  w: { n: number; k: number; bits: number; groupSize: number; actOrder: boolean },
  name = 'tensor',
): void {
  const hint = 'export the edgeq or GPTQ format for this model, or keep the layer dense';
  if (w.bits !== 4) throw new UnsupportedError('E_AWQ_BITS', `${name}: AWQ GEMM checkpoints are 4-bit only, got ${w.bits}-bit`, hint);
  if (w.actOrder) {
    throw new UnsupportedError('E_AWQ_ACT_ORDER', `${name}: AWQ checkpoints have no g_idx, so act-order weights cannot be stored`, hint);
  }
  if (w.n % 8 !== 0) throw new UnsupportedError('E_AWQ_SHAPE', `${name}: AWQ GEMM needs out features divisible by 8, got ${w.n}`, hint);
  if (w.k % w.groupSize !== 0) {
    throw new UnsupportedError('E_AWQ_SHAPE', `${name}: AWQ needs in features (${w.k}) divisible by the group size (${w.groupSize})`, hint);
  }
}

export function packAwqGemm(q: QuantizedWeight, name = 'tensor'): AwqGemmTensors {
  const { n: N, k: K } = q;
  checkAwqShape({ n: N, k: K, bits: q.grid.bits, groupSize: q.groupSize, actOrder: q.gIdx !== null }, name);
  const G = K / q.groupSize;
  if (G !== q.numGroups) throw new UnsupportedError('E_AWQ_SHAPE', `${name}: numGroups ${q.numGroups} != K / groupSize = ${G}`);
  const W = N / 8;

  const qweight = new Int32Array(K * W);
  for (let c = 0; c < W; c++) {
    for (let k = 0; k < K; k++) {
      let word = 0;
      for (let i = 0; i < 8; i++) word |= q.codes[(8 * c + AWQ_ORDER[i]!) * K + k]! << (4 * i);
      qweight[k * W + c] = word | 0;
    }
  }

  const qzeros = new Int32Array(G * W);
  for (let c = 0; c < W; c++) {
    for (let g = 0; g < G; g++) {
      let word = 0;
      for (let i = 0; i < 8; i++) word |= q.zeros[(8 * c + AWQ_ORDER[i]!) * G + g]! << (4 * i);
      qzeros[g * W + c] = word | 0;
    }
  }

  const sT = new Float32Array(G * N);
  for (let col = 0; col < N; col++) for (let g = 0; g < G; g++) sT[g * N + col] = q.scales[col * G + g]!;

  return { qweight, qzeros, scales: encodeF16(sT), shapes: { qweight: [K, W], qzeros: [G, W], scales: [G, N] } };
}
