/**
 * The AIMET / QNN quantization encodings file, version "1.0.0" (list format, AIMET v2 `sim.export`,
 * fastforward), as consumed by `qnn-onnx-converter --quantization_overrides` — see FORMATS.md §3(e):
 *
 *   { "version": "1.0.0",
 *     "activation_encodings": [ { name, dtype: "INT", enc_type: "PER_TENSOR", bw: 16, is_sym: false, scale: [s], offset: [o] } ],
 *     "param_encodings": [ LPBQ or PER_CHANNEL entries ],
 *     "quantizer_args": { … }, "excluded_layers": [] }
 *
 * Integer convention (the spec's example): real = (u + offset) · scale, u ∈ [0, 2^bw − 1], offset =
 * round(min / scale) ≤ 0; symmetric entries have offset −2^(bw−1).
 * LPBQ entries describe a MatMul weight initializer stored [K, N] (input × output, as torch.onnx exports
 * nn.Linear): channels along axis 1 (N), blocks of `block_size` along axis 0 (K); `scale` and `offset`
 * have N entries, `per_block_int_scale` K/block_size × N entries in row-major [block, channel] order
 * (fastforward's layout for PerBlock(block_dims=(0,), per_channel_dims=(1,))).
 */
import type { LpbqWeight } from './lpbq.js';
import { LPBQ_COMPRESSED_BW, LPBQ_DECOMPRESSED_BW } from './lpbq.js';
import type { Range } from './activation-ranges.js';

export const ENCODINGS_VERSION = '1.0.0';
export const ACTIVATION_BW = 16;

export interface ActivationEncoding {
  name: string;
  dtype: 'INT';
  enc_type: 'PER_TENSOR';
  bw: number;
  is_sym: false;
  scale: [number];
  offset: [number];
}

export interface LpbqEncoding {
  name: string;
  dtype: 'INT';
  enc_type: 'LPBQ';
  is_sym: true;
  bw: number;
  compressed_bw: number;
  block_size: number;
  scale: number[];
  per_block_int_scale: number[];
  offset: number[];
}

export interface PerChannelEncoding {
  name: string;
  dtype: 'INT';
  enc_type: 'PER_CHANNEL';
  is_sym: true;
  bw: number;
  scale: number[];
  offset: number[];
}

export type ParamEncoding = LpbqEncoding | PerChannelEncoding;

export interface EncodingsFile {
  version: typeof ENCODINGS_VERSION;
  activation_encodings: ActivationEncoding[];
  param_encodings: ParamEncoding[];
  quantizer_args: Record<string, unknown>;
  excluded_layers: string[];
}

/** 16-bit asymmetric per-tensor encoding of an observed range (widened to contain 0, as AIMET's min/max). */
export function activationEncoding(name: string, r: Range, bw = ACTIVATION_BW): ActivationEncoding {
  const min = Math.min(r.min, 0);
  let max = Math.max(r.max, 0);
  if (!(max > min)) max = min + 1e-5;
  const scale = (max - min) / (2 ** bw - 1);
  const offset = Math.round(min / scale);
  return { name, dtype: 'INT', enc_type: 'PER_TENSOR', bw, is_sym: false, scale: [scale], offset: [offset] };
}

/** A symmetric per-channel encoding of `bw` bits with the given scales (8-bit weights, stored exactly). */
export function perChannelEncoding(name: string, scales: ArrayLike<number>, bw: number): PerChannelEncoding {
  const scale = Array.from(scales, (s) => Math.fround(s));
  return { name, dtype: 'INT', enc_type: 'PER_CHANNEL', is_sym: true, bw, scale, offset: scale.map(() => -(2 ** (bw - 1))) };
}

/**
 * The param encoding of a weight on the LPBQ grid (lpbq.ts), for the [K, N] initializer `name`. A weight
 * whose single block spans the whole row is written PER_CHANNEL (4-bit symmetric, scale S·m).
 */
export function paramEncoding(name: string, l: LpbqWeight): ParamEncoding {
  if (l.blocks === 1 && l.blockSize === l.k) {
    const scale = Array.from(l.channelScale, (s, r) => Math.fround(s * l.blockIntScale[r]));
    return { name, dtype: 'INT', enc_type: 'PER_CHANNEL', is_sym: true, bw: LPBQ_COMPRESSED_BW, scale, offset: scale.map(() => -(2 ** (LPBQ_COMPRESSED_BW - 1))) };
  }
  const perBlock = new Array<number>(l.blocks * l.n);
  for (let b = 0; b < l.blocks; b++) for (let r = 0; r < l.n; r++) perBlock[b * l.n + r] = l.blockIntScale[r * l.blocks + b];
  return {
    name,
    dtype: 'INT',
    enc_type: 'LPBQ',
    is_sym: true,
    bw: LPBQ_DECOMPRESSED_BW,
    compressed_bw: LPBQ_COMPRESSED_BW,
    block_size: l.blockSize,
    scale: Array.from(l.channelScale),
    per_block_int_scale: perBlock,
    offset: Array.from(l.channelScale, () => -(2 ** (LPBQ_DECOMPRESSED_BW - 1))),
  };
}

export function encodingsFile(params: ParamEncoding[], activations: ActivationEncoding[]): EncodingsFile {
  return {
    version: ENCODINGS_VERSION,
    activation_encodings: activations,
    param_encodings: params,
    quantizer_args: {
      activation_bitwidth: ACTIVATION_BW,
      param_bitwidth: LPBQ_COMPRESSED_BW,
      dtype: 'int',
      is_symmetric: true,
      per_channel_quantization: true,
      quant_scheme: 'min_max',
    },
    excluded_layers: [],
  };
}
