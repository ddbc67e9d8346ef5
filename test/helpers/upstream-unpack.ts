/**
 * Transcriptions, into TypeScript, of the UPSTREAM code that reads packed GPTQ / AWQ checkpoints. The
 * format tests check edgeq's packers against these — never against the packers' own inverses. Each
 * function follows the cited Python line by line (the Python is quoted in the comments); torch
 * semantics are emulated where they matter: `>>` on int32 is arithmetic, `.to(torch.int8/int16)`
 * wraps to the low 8/16 bits, and int × float16 tensor arithmetic rounds each result to fp16 once.
 *
 * Sources (read in stored snapshots of the public repositories):
 *   [AA]  casper-hansen/AutoAWQ @ 88e4c76b20755db275574e6a03c83c84ba3bece5
 *         awq/utils/packing_utils.py — AWQ_REVERSE_ORDER, unpack_awq, reverse_awq_order, dequantize_gemm
 *   [AG]  AutoGPTQ/AutoGPTQ @ 9f7d37072917ab3a7545835f23e808294a542153
 *         auto_gptq/nn_modules/qlinear/qlinear_cuda.py — QuantLinear.__init__ (wf, lines 82-92) and the
 *         torch fallback of QuantLinear.forward (lines 254-313): shifts by wf, `zeros + 1`, g_idx gather,
 *         and the 3-bit unpack
 *   [GM]  ModelCloud/GPTQModel @ f4c327a17eb3e24524d5a97a3d682e3696ae6a28
 *         gptqmodel/utils/model_dequant.py — convert_gptq_file (v1 path), _shift_gptq_qzeros,
 *         unpack_cols, pack_cols, unpack_rows, _unpack_cols_3bit, _pack_cols_3bit, _unpack_rows_3bit
 */
import { f16BitsToF32, f32ToF16Bits } from '../../src/core/dtype.js';
import type { QuantizedWeight } from '../../src/qtypes/types.js';

/** A row-major 2-D int32 tensor. */
export interface I32Tensor {
  data: Int32Array;
  shape: [number, number];
}

/** Result of a transcribed dequantization: [K, N] weights (as torch would hold them) + intermediates. */
export interface UpstreamDequant {
  /** [K, N] unpacked integer codes. */
  iweight: Int32Array;
  /** Zero points as the loader uses them, [G, N] (GPTQ) or [K/g, N] before repeat (AWQ). */
  izeros: Int32Array;
  /** [K, N] dequantized weights (values of the upstream result tensor). */
  weight: Float64Array;
}

/** torch `x.to(torch.int8)` / `.to(torch.int16)` on an int32 value: keep the low bits, sign-extend. */
const toInt8 = (x: number): number => (x << 24) >> 24;
const toInt16 = (x: number): number => (x << 16) >> 16;
/** int tensor × float16 tensor -> float16 tensor: the exact product rounded once to fp16. */
const halfMul = (a: number, b: number): number => f16BitsToF32(f32ToF16Bits(Math.fround(a * b)));
const half = (bits: number): number => f16BitsToF32(bits);

// ------------------------------------------------------------------------------------------------
// [AA] AutoAWQ awq/utils/packing_utils.py

// AWQ_REVERSE_ORDER = [0, 4, 1, 5, 2, 6, 3, 7]
export const AWQ_REVERSE_ORDER = [0, 4, 1, 5, 2, 6, 3, 7];

// def unpack_awq(qweight: torch.Tensor, qzeros: torch.Tensor, bits: int):
export function unpack_awq(qweight: I32Tensor, qzeros: I32Tensor | null, bits: number): { iweights: I32Tensor; izeros: I32Tensor | null } {
  //     shifts = torch.arange(0, 32, bits, device=qzeros.device)
  const shifts: number[] = [];
  for (let s = 0; s < 32; s += bits) shifts.push(s);
  //     iweights = torch.bitwise_right_shift(qweight[:, :, None], shifts[None, None, :]).to(torch.int8)
  //     iweights = iweights.view(iweights.shape[0], -1)
  const shiftCols = (t: I32Tensor): I32Tensor => {
    const [r, c] = t.shape;
    const out = new Int32Array(r * c * shifts.length);
    for (let i = 0; i < r; i++) {
      for (let j = 0; j < c; j++) {
        for (let s = 0; s < shifts.length; s++) out[(i * c + j) * shifts.length + s] = toInt8(t.data[i * c + j]! >> shifts[s]!);
      }
    }
    return { data: out, shape: [r, c * shifts.length] };
  };
  const iweights = shiftCols(qweight);
  //     if qzeros is not None: izeros = (same, columnwise) else: izeros = qzeros
  const izeros = qzeros !== null ? shiftCols(qzeros) : null;
  //     return iweights, izeros
  return { iweights, izeros };
}

// def reverse_awq_order(iweights: torch.Tensor, izeros: torch.Tensor, bits: int):
export function reverse_awq_order(iweights: I32Tensor, izeros: I32Tensor | null, bits: number): { iweights: I32Tensor; izeros: I32Tensor | null } {
  //     reverse_order_tensor = torch.arange(iweights.shape[-1], dtype=torch.int32)
  //     reverse_order_tensor = reverse_order_tensor.view(-1, 32 // bits)
  //     reverse_order_tensor = reverse_order_tensor[:, AWQ_REVERSE_ORDER]
  //     reverse_order_tensor = reverse_order_tensor.view(-1)
  const width = iweights.shape[1];
  const pf = 32 / bits;
  const rev: number[] = [];
  for (let row = 0; row < width / pf; row++) for (const j of AWQ_REVERSE_ORDER) rev.push(row * pf + j);
  const gatherCols = (t: I32Tensor): I32Tensor => {
    const [r, c] = t.shape;
    const out = new Int32Array(r * c);
    for (let i = 0; i < r; i++) for (let j = 0; j < c; j++) out[i * c + j] = t.data[i * c + rev[j]!]!;
    return { data: out, shape: [r, c] };
  };
  //     if izeros is not None: izeros = izeros[:, reverse_order_tensor]
  //     iweights = iweights[:, reverse_order_tensor]
  return { iweights: gatherCols(iweights), izeros: izeros !== null ? gatherCols(izeros) : null };
}

// def dequantize_gemm(qweight, qzeros, scales, bits, group_size):
export function dequantize_gemm(qweight: I32Tensor, qzeros: I32Tensor, scalesF16: Uint16Array, bits: number, group_size: number): UpstreamDequant {
  //     iweight, izeros = unpack_awq(qweight, qzeros, bits)
  const u = unpack_awq(qweight, qzeros, bits);
  //     iweight, izeros = reverse_awq_order(iweight, izeros, bits)
  const r = reverse_awq_order(u.iweights, u.izeros, bits);
  //     iweight = torch.bitwise_and(iweight, (2**bits) - 1)
  //     izeros = torch.bitwise_and(izeros, (2**bits) - 1)
  const mask = (1 << bits) - 1;
  const iweight = r.iweights.data.map((v) => v & mask);
  const izeros = r.izeros!.data.map((v) => v & mask);
  const [K, N] = r.iweights.shape;
  //     scales = scales.repeat_interleave(group_size, dim=0)
  //     izeros = izeros.repeat_interleave(group_size, dim=0)
  //     iweight = (iweight - izeros) * scales
  const weight = new Float64Array(K * N);
  for (let k = 0; k < K; k++) {
    const g = Math.floor(k / group_size);
    for (let n = 0; n < N; n++) weight[k * N + n] = halfMul(iweight[k * N + n]! - izeros[g * N + n]!, half(scalesF16[g * N + n]!));
  }
  //     return iweight
  return { iweight, izeros, weight };
}

// ------------------------------------------------------------------------------------------------
// [AG] AutoGPTQ auto_gptq/nn_modules/qlinear/qlinear_cuda.py, QuantLinear (torch path of forward)

/** `self.wf` for bits in [2, 4, 8]: shape (1, 32/bits); for 3: the (1, 3, 12) table. */
function autogptqWf(bits: number): number[][] {
  // if self.bits in [2, 4, 8]:
  //     self.wf = torch.tensor(list(range(0, 32, self.bits)), dtype=torch.int32).unsqueeze(0)
  if (bits !== 3) {
    const row: number[] = [];
    for (let s = 0; s < 32; s += bits) row.push(s);
    return [row];
  }
  // elif self.bits == 3:
  return [
    [0, 3, 6, 9, 12, 15, 18, 21, 24, 27, 30, 0],
    [0, 1, 4, 7, 10, 13, 16, 19, 22, 25, 28, 31],
    [0, 2, 5, 8, 11, 14, 17, 20, 23, 26, 29, 0],
  ];
}

/** The weight that QuantLinear.forward multiplies x by (num_itr == 1 branch), [K, N]. */
export function autogptqDequantize(
  qweight: I32Tensor,
  qzeros: I32Tensor,
  scalesF16: Uint16Array,
  g_idx: Int32Array,
  bits: number,
): UpstreamDequant {
  const wf = autogptqWf(bits);
  const [G, Z] = qzeros.shape;
  const [R, N] = qweight.shape;
  let zeros: Int32Array; // reshaped to self.scales.shape = (G, N)
  let weight: Int32Array; // reshaped to (K, N)
  if (bits === 2 || bits === 4 || bits === 8) {
    const pf = 32 / bits;
    const cast = bits === 8 ? toInt16 : toInt8;
    // zeros = torch.bitwise_right_shift(torch.unsqueeze(self.qzeros, 2).expand(-1, -1, 32 // self.bits),
    //                                   self.wf.unsqueeze(0)).to(torch.int16 if self.bits == 8 else torch.int8)
    // zeros = torch.bitwise_and(zeros, (2**self.bits) - 1)
    // zeros = zeros + 1
    // zeros = zeros.reshape(self.scales.shape)
    zeros = new Int32Array(G * Z * pf);
    for (let g = 0; g < G; g++)
      for (let z = 0; z < Z; z++)
        for (let j = 0; j < pf; j++) zeros[(g * Z + z) * pf + j] = (cast(qzeros.data[g * Z + z]! >> wf[0]![j]!) & ((1 << bits) - 1)) + 1;
    // weight = torch.bitwise_right_shift(torch.unsqueeze(self.qweight, 1).expand(-1, 32 // self.bits, -1),
    //                                    self.wf.unsqueeze(-1)).to(torch.int16 if self.bits == 8 else torch.int8)
    // weight = torch.bitwise_and(weight, (2**self.bits) - 1)
    weight = new Int32Array(R * pf * N);
    for (let r = 0; r < R; r++)
      for (let j = 0; j < pf; j++)
        for (let n = 0; n < N; n++) weight[(r * pf + j) * N + n] = cast(qweight.data[r * N + n]! >> wf[0]![j]!) & ((1 << bits) - 1);
  } else if (bits === 3) {
    // zeros = self.qzeros.reshape(self.qzeros.shape[0], self.qzeros.shape[1] // 3, 3, 1).expand(-1, -1, -1, 12)
    // zeros = zeros >> self.wf.unsqueeze(0)
    // zeros[:, :, 0, 10] = (zeros[:, :, 0, 10] & 0x3) | ((zeros[:, :, 1, 0] << 2) & 0x4)
    // zeros[:, :, 1, 11] = (zeros[:, :, 1, 11] & 0x1) | ((zeros[:, :, 2, 0] << 1) & 0x6)
    // zeros = zeros & 0x7
    // zeros = torch.cat([zeros[:, :, 0, :11], zeros[:, :, 1, 1:12], zeros[:, :, 2, 1:11]], dim=2)
    // zeros = zeros + 1
    // zeros = zeros.reshape(self.scales.shape)
    zeros = new Int32Array(G * (Z / 3) * 32);
    for (let g = 0; g < G; g++) {
      for (let b = 0; b < Z / 3; b++) {
        const words = [0, 1, 2].map((i) => qzeros.data[g * Z + 3 * b + i]!);
        const out = unpack3(words, wf);
        for (let i = 0; i < 32; i++) zeros[(g * (Z / 3) + b) * 32 + i] = out[i]! + 1;
      }
    }
    // weight = self.qweight.reshape(self.qweight.shape[0] // 3, 3, 1, self.qweight.shape[1]).expand(-1, -1, 12, -1)
    // weight = (weight >> self.wf.unsqueeze(-1)) & 0x7
    // weight[:, 0, 10] = (weight[:, 0, 10] & 0x3) | ((weight[:, 1, 0] << 2) & 0x4)
    // weight[:, 1, 11] = (weight[:, 1, 11] & 0x1) | ((weight[:, 2, 0] << 1) & 0x6)
    // weight = weight & 0x7
    // weight = torch.cat([weight[:, 0, :11], weight[:, 1, 1:12], weight[:, 2, 1:11]], dim=1)
    weight = new Int32Array((R / 3) * 32 * N);
    for (let b = 0; b < R / 3; b++) {
      for (let n = 0; n < N; n++) {
        const words = [0, 1, 2].map((i) => qweight.data[(3 * b + i) * N + n]!);
        const out = unpack3(words, wf);
        for (let i = 0; i < 32; i++) weight[(b * 32 + i) * N + n] = out[i]!;
      }
    }
  } else {
    // raise NotImplementedError("Only 2,3,4,8 bits are supported.")
    throw new Error('Only 2,3,4,8 bits are supported.');
  }
  // weight = weight.reshape(weight.shape[0] * weight.shape[1], weight.shape[2])
  // num_itr = self.g_idx.shape[0] // x.shape[-1]
  // if num_itr == 1:
  //     weights = self.scales[self.g_idx.long()] * (weight - zeros[self.g_idx.long()])
  const K = g_idx.length;
  const out = new Float64Array(K * N);
  for (let k = 0; k < K; k++) {
    const g = g_idx[k]!;
    for (let n = 0; n < N; n++) out[k * N + n] = halfMul(weight[k * N + n]! - zeros[g * N + n]!, half(scalesF16[g * N + n]!));
  }
  return { iweight: weight, izeros: zeros, weight: out };
}

/**
 * One 3-word block of the 3-bit path of [AG] (same statements for zeros and weight): every word is
 * shifted by each entry of its wf row, the two straddling values are fixed up, & 0x7, then
 * cat([row0[:11], row1[1:12], row2[1:11]]).
 */
function unpack3(words: number[], wf: number[][]): number[] {
  const v = [0, 1, 2].map((i) => wf[i]!.map((s) => words[i]! >> s)); // x >> wf (arithmetic int32)
  v[0]![10] = (v[0]![10]! & 0x3) | ((v[1]![0]! << 2) & 0x4);
  v[1]![11] = (v[1]![11]! & 0x1) | ((v[2]![0]! << 1) & 0x6);
  const m = v.map((row) => row.map((x) => x & 0x7));
  return [...m[0]!.slice(0, 11), ...m[1]!.slice(1, 12), ...m[2]!.slice(1, 11)];
}

// ------------------------------------------------------------------------------------------------
// [GM] GPTQModel gptqmodel/utils/model_dequant.py (checkpoint dequantization, v1 "gptq" format)

/** unpack_cols(packed, bits): values along columns (bits 2/4/8: result[:, i::pf] = (w >> i·bits) & mask). */
export function gm_unpack_cols(packed: I32Tensor, bits: number): I32Tensor {
  const [rows, cols] = packed.shape;
  if (bits === 3) {
    // _unpack_cols_3bit: words = packed.reshape(rows, blocks, 3); 32 values per block
    const blocks = cols / 3;
    const out = new Int32Array(rows * blocks * 32);
    for (let r = 0; r < rows; r++)
      for (let b = 0; b < blocks; b++) {
        const w = [0, 1, 2].map((i) => packed.data[r * cols + 3 * b + i]!);
        gmUnpack3(w).forEach((x, i) => (out[(r * blocks + b) * 32 + i] = x));
      }
    return { data: out, shape: [rows, blocks * 32] };
  }
  //     pack_factor = pack_bits // bits; mask = (1 << bits) - 1
  //     packed_uint = packed.to(torch.int64) & ((1 << pack_bits) - 1)
  //     for i in range(pack_factor): result[:, i::pack_factor] = ((packed_uint >> (i * bits)) & mask)
  const pf = 32 / bits;
  const mask = (1 << bits) - 1;
  const out = new Int32Array(rows * cols * pf);
  for (let r = 0; r < rows; r++)
    for (let c = 0; c < cols; c++) for (let i = 0; i < pf; i++) out[r * cols * pf + c * pf + i] = ((packed.data[r * cols + c]! >>> 0) / 2 ** (i * bits)) & mask;
  return { data: out, shape: [rows, cols * pf] };
}

/** pack_cols(values, bits, pack_dtype=int32): inverse of unpack_cols (used by the v1 zero correction). */
export function gm_pack_cols(values: I32Tensor, bits: number): I32Tensor {
  const [rows, cols] = values.shape;
  if (bits === 3) {
    // _pack_cols_3bit: word0 |= v[idx] << 3·idx, |= v[10] << 30; word1 = (v[10] >> 2) & 1, |= v[11+idx] << (1 + 3·idx),
    // |= v[21] << 31; word2 = (v[21] >> 1) & 3, |= v[22+idx] << (2 + 3·idx); (packed & mask32).to(int32)
    const blocks = cols / 32;
    const out = new Int32Array(rows * blocks * 3);
    for (let r = 0; r < rows; r++)
      for (let b = 0; b < blocks; b++) {
        const v = (i: number): number => values.data[r * cols + 32 * b + i]! & 0x7;
        let w0 = 0;
        for (let idx = 0; idx < 10; idx++) w0 |= v(idx) << (3 * idx);
        w0 |= v(10) << 30;
        let w1 = (v(10) >> 2) & 0x1;
        for (let idx = 0; idx < 10; idx++) w1 |= v(11 + idx) << (1 + 3 * idx);
        w1 |= v(21) << 31;
        let w2 = (v(21) >> 1) & 0x3;
        for (let idx = 0; idx < 10; idx++) w2 |= v(22 + idx) << (2 + 3 * idx);
        out.set([w0 | 0, w1 | 0, w2 | 0], (r * blocks + b) * 3);
      }
    return { data: out, shape: [rows, blocks * 3] };
  }
  //     values_uint = values.to(torch.int64) & mask
  //     for i in range(pack_factor): packed |= (values_uint[:, i::pack_factor] << (i * bits)).to(pack_dtype)
  const pf = 32 / bits;
  const mask = (1 << bits) - 1;
  const out = new Int32Array(rows * (cols / pf));
  for (let r = 0; r < rows; r++)
    for (let c = 0; c < cols / pf; c++) {
      let w = 0;
      for (let i = 0; i < pf; i++) w |= (values.data[r * cols + c * pf + i]! & mask) << (i * bits);
      out[r * (cols / pf) + c] = w | 0;
    }
  return { data: out, shape: [rows, cols / pf] };
}

/** unpack_rows(packed, bits): values along rows (bits 2/4/8: result[i::pf, :] = (w >> i·bits) & mask). */
export function gm_unpack_rows(packed: I32Tensor, bits: number): I32Tensor {
  const [rows, cols] = packed.shape;
  if (bits === 3) {
    // _unpack_rows_3bit: words = packed.reshape(blocks, 3, cols)
    const blocks = rows / 3;
    const out = new Int32Array(blocks * 32 * cols);
    for (let b = 0; b < blocks; b++)
      for (let c = 0; c < cols; c++) {
        const w = [0, 1, 2].map((i) => packed.data[(3 * b + i) * cols + c]!);
        gmUnpack3(w).forEach((x, i) => (out[(b * 32 + i) * cols + c] = x));
      }
    return { data: out, shape: [blocks * 32, cols] };
  }
  const pf = 32 / bits;
  const mask = (1 << bits) - 1;
  const out = new Int32Array(rows * pf * cols);
  for (let r = 0; r < rows; r++)
    for (let i = 0; i < pf; i++) for (let c = 0; c < cols; c++) out[(r * pf + i) * cols + c] = ((packed.data[r * cols + c]! >>> 0) / 2 ** (i * bits)) & mask;
  return { data: out, shape: [rows * pf, cols] };
}

/** The 32 values of one 3-word block, as _unpack_cols_3bit / _unpack_rows_3bit compute them (int64 words). */
function gmUnpack3(w: number[]): number[] {
  const [w0, w1, w2] = w.map((x) => BigInt(x)) as [bigint, bigint, bigint]; // packed.to(torch.int64): sign kept
  const u: number[] = new Array<number>(32);
  const f = (x: bigint): number => Number(x);
  for (let idx = 0; idx < 10; idx++) u[idx] = f((w0 >> BigInt(3 * idx)) & 7n);
  u[10] = f(((w0 >> 30n) & 0x3n) | ((w1 << 2n) & 0x4n));
  for (let idx = 0; idx < 10; idx++) u[11 + idx] = f((w1 >> BigInt(1 + 3 * idx)) & 7n);
  u[21] = f(((w1 >> 31n) & 0x1n) | ((w2 << 1n) & 0x6n));
  for (let idx = 0; idx < 10; idx++) u[22 + idx] = f((w2 >> BigInt(2 + 3 * idx)) & 7n);
  return u;
}

/** convert_gptq_file for one module of a checkpoint_format "gptq" (v1) model, target dtype float16. */
export function gm_convert_gptq(qweight: I32Tensor, qzeros: I32Tensor, scalesF16: Uint16Array, g_idx: Int32Array, bits: number): UpstreamDequant {
  // if _uses_gptq_v1_qzeros(config) and not planar: qzeros = _correct_gptq_v1_qzeros(qzeros, bits)
  //   _shift_gptq_qzeros(delta=1): zeros = unpack_cols(qzeros, bits); shifted = (zeros + delta) & ((1 << bits) - 1)
  //                                return pack_cols(shifted, bits, pack_dtype=qzeros.dtype)
  const z0 = gm_unpack_cols(qzeros, bits);
  const corrected = gm_pack_cols({ data: z0.data.map((z) => (z + 1) & ((1 << bits) - 1)), shape: z0.shape }, bits);
  // weight_int = unpack_rows(qweight, bits); zeros = unpack_cols(qzeros, bits)
  const weightInt = gm_unpack_rows(qweight, bits);
  const zeros = gm_unpack_cols(corrected, bits);
  // scales_full = scales.to(torch.float32)[g_idx]; zeros_full = zeros.to(torch.float32)[g_idx]
  // weight = (weight_int.to(torch.float32) - zeros_full) * scales_full;  weight.to(target_dtype)
  const [K, N] = weightInt.shape;
  const out = new Float64Array(K * N);
  for (let k = 0; k < K; k++) {
    const g = g_idx[k]!;
    for (let n = 0; n < N; n++) {
      const f32 = Math.fround((weightInt.data[k * N + n]! - zeros.data[g * N + n]!) * half(scalesF16[g * N + n]!));
      out[k * N + n] = f16BitsToF32(f32ToF16Bits(f32));
    }
  }
  return { iweight: weightInt.data, izeros: zeros.data, weight: out };
}

// ------------------------------------------------------------------------------------------------
// Not a transcription: seeded random QuantizedWeights shared by the format tests.

/** mulberry32: small deterministic PRNG, uniform in [0, 1). */
export function seededRng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface RandomQOptions {
  n: number;
  k: number;
  bits: 2 | 3 | 4 | 8;
  /** -1 = per channel. */
  groupSize: number;
  sym: boolean;
  actOrder?: boolean;
  /** Smallest asymmetric zero point (GPTQ v1 needs ≥ 1). Default 0. */
  minZero?: number;
  seed: number;
}

/**
 * Random codes over the full range, random asym zeros, random fp16 scales (normal and subnormal,
 * both signs) and, for act-order, g_idx = floor(perm[c] / g) for a random permutation (non-monotonic).
 */
export function randomQuantized(o: RandomQOptions): QuantizedWeight {
  const rnd = seededRng(o.seed);
  const maxv = 1 << o.bits;
  const groupSize = o.groupSize === -1 ? o.k : o.groupSize;
  const numGroups = Math.ceil(o.k / groupSize);
  const codes = new Uint8Array(o.n * o.k).map(() => Math.floor(rnd() * maxv));
  const minZero = o.minZero ?? 0;
  const zeros = new Uint8Array(o.n * numGroups).map(() =>
    o.sym ? maxv / 2 : minZero + Math.floor(rnd() * (maxv - minZero)),
  );
  const scales = new Float32Array(o.n * numGroups).map(() => {
    const mag = rnd() < 0.05 ? rnd() * 6e-5 : 1e-4 + rnd() * 0.2; // some fp16 subnormals
    return f16BitsToF32(f32ToF16Bits((rnd() < 0.1 ? -1 : 1) * mag));
  });
  let gIdx: Int32Array | null = null;
  if (o.actOrder) {
    const perm = Array.from({ length: o.k }, (_, i) => i);
    for (let i = o.k - 1; i > 0; i--) {
      const j = Math.floor(rnd() * (i + 1));
      [perm[i], perm[j]] = [perm[j]!, perm[i]!];
    }
    gIdx = Int32Array.from(perm, (p) => Math.floor(p / groupSize));
  }
  const gs = o.groupSize === -1 ? 'pc' : `g${o.groupSize}`;
  return {
    qtype: `int${o.bits}_${gs}_${o.sym ? 'sym' : 'asym'}${o.actOrder ? '_act' : ''}`,
    grid: { bits: o.bits, groupSize: o.groupSize, sym: o.sym },
    n: o.n,
    k: o.k,
    groupSize,
    numGroups,
    codes,
    scales,
    zeros,
    gIdx,
  };
}

/** Reference dequantization of our in-memory form, transposed to the upstream [K, N] layout, rounded to fp16. */
export function expectedDequantKN(q: QuantizedWeight): Float64Array {
  const out = new Float64Array(q.k * q.n);
  for (let r = 0; r < q.n; r++) {
    for (let c = 0; c < q.k; c++) {
      const g = q.gIdx ? q.gIdx[c]! : Math.floor(c / q.groupSize);
      const v = Math.fround(q.scales[r * q.numGroups + g]! * (q.codes[r * q.k + c]! - q.zeros[r * q.numGroups + g]!));
      out[c * q.n + r] = f16BitsToF32(f32ToF16Bits(v));
    }
  }
  return out;
}
