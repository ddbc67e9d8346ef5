/**
 * Shared shapes of edgeq's integer quantization. A weight W (n = out features, k = in features, PyTorch
 * layout) quantized on a grid is held unpacked in memory as one code per weight plus per-group scales and
 * zero points; formats pack it on write.
 *
 *   W[r, c] ≈ scale[r, g(c)] · (code[r, c] − zero[r, g(c)])      g(c) = gIdx ? gIdx[c] : floor(c / groupSize)
 */

export type Bits = 2 | 3 | 4 | 8;

export interface GridSpec {
  bits: Bits;
  /** Weights per group along the input dimension; -1 = per channel (one group spans the whole row). */
  groupSize: number;
  /** Symmetric: zero fixed at 2^(bits−1) (GPTQ convention); asymmetric: a per-group integer zero point. */
  sym: boolean;
}

export interface QuantizedWeight {
  /** Registry id of the quant type, e.g. 'int4_g128_asym'. */
  qtype: string;
  grid: GridSpec;
  n: number;
  k: number;
  /** Effective group size (k when per-channel). */
  groupSize: number;
  /** Groups per row: ceil(k / groupSize). */
  numGroups: number;
  /** (n, k) codes in [0, 2^bits). */
  codes: Uint8Array;
  /** (n, numGroups) scales; values are fp16-representable (stored as fp16). */
  scales: Float32Array;
  /** (n, numGroups) integer zero points in [0, 2^bits); for sym grids all equal 2^(bits−1). */
  zeros: Uint8Array;
  /** Act-order: (k,) group index of each input column (non-monotonic); null = floor(c / groupSize). */
  gIdx: Int32Array | null;
}
