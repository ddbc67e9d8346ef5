/**
 * AutoGPTQ / GPTQModel "gptq" (v1) tensor layout of one quantized linear (in = K, out = N):
 *
 *   qweight int32 [K·bits/32, N]      codes packed along K, low bits first
 *   qzeros  int32 [G, N·bits/32]      (zero − 1) packed along N, low bits first   G = ceil(K / g)
 *   scales  fp16  [G, N]
 *   g_idx   int32 [K]                 group of each input row (k // g, or the act-order assignment)
 *
 *   W[n, k] = scales[g_idx[k], n] · (q[k, n] − (stored_zero[g_idx[k], n] + 1))
 *
 * Bits 2/4/8 pack 32/bits consecutive values per word at shifts 0, bits, 2·bits, ...; bits 3 packs 32
 * values into 3 words (10 whole values per word, values 10 and 21 straddle words 0|1 and 1|2).
 * Our codes are (n, k): the packer transposes. Layout details and the upstream code they come from are
 * cited in test/helpers/upstream-unpack.ts, whose transcribed unpackers check this file.
 *
 * v1 stores zero − 1, so a zero point of 0 has no faithful encoding (loaders add 1 to the masked field
 * and read 2^bits). A group whose zero is 0 is re-expressed losslessly as zero 1 with codes + 1 when no
 * code of that group is 2^bits − 1; otherwise packing fails with UnsupportedError.
 */
import { encodeF16 } from '../../core/dtype.js';
import { UnsupportedError } from '../../core/errors.js';
import type { QuantizedWeight } from '../../qtypes/types.js';

export interface GptqV1Tensors {
  /** [K·bits/32, N] row-major. */
  qweight: Int32Array;
  /** [G, N·bits/32] row-major. */
  qzeros: Int32Array;
  /** [G, N] fp16 bit patterns. */
  scales: Uint16Array;
  /** [K]. */
  g_idx: Int32Array;
  /** Shapes, for writers. */
  shapes: { qweight: [number, number]; qzeros: [number, number]; scales: [number, number]; g_idx: [number] };
}

/** Shape constraints of the layout (throws UnsupportedError with a hint). */
export function checkGptqShape(n: number, k: number, bits: number, name = 'tensor'): void {
  if (bits !== 2 && bits !== 3 && bits !== 4 && bits !== 8) {
    throw new UnsupportedError('E_GPTQ_BITS', `${name}: GPTQ checkpoints hold 2, 3, 4 or 8-bit weights, not ${bits}`);
  }
  const unit = bits === 3 ? 32 : 32 / bits;
  if (k % unit !== 0 || n % unit !== 0) {
    throw new UnsupportedError(
      'E_GPTQ_SHAPE',
      `${name}: a ${bits}-bit GPTQ layer needs in and out features divisible by ${unit}, got in=${k}, out=${n}`,
      'keep this layer dense or export the edgeq format (GPTQ loaders pack whole 32-bit words)',
    );
  }
}

/** Pack one quantized weight into the GPTQ v1 tensors. */
export function packGptqV1(q: QuantizedWeight, name = 'tensor'): GptqV1Tensors {
  const bits = q.grid.bits;
  const { n: N, k: K, numGroups: G } = q;
  checkGptqShape(N, K, bits, name);
  const gIdx = q.gIdx ? Int32Array.from(q.gIdx) : defaultGIdx(K, q.groupSize);
  const { codes, zeros } = liftZeroZeros(q, gIdx, name);

  // [K, N] view of the codes: intweight[k][n] = codes[n·K + k]
  const qweight = new Int32Array(((K * bits) / 32) * N);
  for (let col = 0; col < N; col++) {
    const base = col * K;
    packColumn((k) => codes[base + k]!, K, bits, (row, word) => {
      qweight[row * N + col] = word;
    });
  }

  // zeros [G, N] (z − 1 masked to the field) packed along N per group row
  const zw = (N * bits) / 32;
  const qzeros = new Int32Array(G * zw);
  const mask = (1 << bits) - 1;
  for (let g = 0; g < G; g++) {
    packColumn((col) => (zeros[col * G + g]! - 1) & mask, N, bits, (w, word) => {
      qzeros[g * zw + w] = word;
    });
  }

  // scales [G, N]
  const sT = new Float32Array(G * N);
  for (let col = 0; col < N; col++) for (let g = 0; g < G; g++) sT[g * N + col] = q.scales[col * G + g]!;
  const scales = encodeF16(sT);

  return {
    qweight,
    qzeros,
    scales,
    g_idx: gIdx,
    shapes: { qweight: [(K * bits) / 32, N], qzeros: [G, zw], scales: [G, N], g_idx: [K] },
  };
}

/** g_idx of a non-act-order weight: k // g. */
export function defaultGIdx(k: number, groupSize: number): Int32Array {
  const out = new Int32Array(k);
  for (let c = 0; c < k; c++) out[c] = Math.floor(c / groupSize);
  return out;
}

/**
 * Pack `count` values (get(i), each < 2^bits) into 32-bit words, calling put(wordIndex, word) for each.
 * count is a multiple of 32/bits (bits 2/4/8) or of 32 (bits 3).
 */
function packColumn(get: (i: number) => number, count: number, bits: number, put: (w: number, word: number) => void): void {
  if (bits !== 3) {
    const pf = 32 / bits;
    for (let w = 0; w < count / pf; w++) {
      let word = 0;
      for (let j = 0; j < pf; j++) word |= get(w * pf + j) << (bits * j);
      put(w, word | 0);
    }
    return;
  }
  // 3 bits: words 3b, 3b+1, 3b+2 hold values 32b .. 32b+31
  for (let b = 0; b < count / 32; b++) {
    const v = (i: number): number => get(32 * b + i);
    let w0 = 0;
    for (let j = 0; j < 10; j++) w0 |= v(j) << (3 * j);
    w0 |= v(10) << 30; // low 2 bits of value 10
    let w1 = (v(10) >> 2) & 1; // its high bit
    for (let j = 0; j < 10; j++) w1 |= v(11 + j) << (3 * j + 1);
    w1 |= v(21) << 31; // low bit of value 21
    let w2 = (v(21) >> 1) & 3; // its high 2 bits
    for (let j = 0; j < 10; j++) w2 |= v(22 + j) << (3 * j + 2);
    put(3 * b, w0 | 0);
    put(3 * b + 1, w1 | 0);
    put(3 * b + 2, w2 | 0);
  }
}

/**
 * Zero points of 0 cannot be stored as zero − 1. For each such (row, group) whose codes are all
 * below 2^bits − 1, use zero 1 and codes + 1 (same dequantized values); otherwise refuse.
 */
function liftZeroZeros(q: QuantizedWeight, gIdx: Int32Array, name: string): { codes: Uint8Array; zeros: Uint8Array } {
  const G = q.numGroups;
  if (q.zeros.every((z) => z !== 0)) return { codes: q.codes, zeros: q.zeros };
  const codes = Uint8Array.from(q.codes);
  const zeros = Uint8Array.from(q.zeros);
  const maxq = (1 << q.grid.bits) - 1;
  for (let r = 0; r < q.n; r++) {
    for (let g = 0; g < G; g++) {
      if (zeros[r * G + g] !== 0) continue;
      const row = r * q.k;
      for (let c = 0; c < q.k; c++) {
        if (gIdx[c] === g && codes[row + c] === maxq) {
          throw new UnsupportedError(
            'E_GPTQ_ZERO_POINT',
            `${name}: row ${r}, group ${g} has zero point 0 and uses code ${maxq}; GPTQ v1 stores zero − 1 and cannot represent it`,
            'quantize with zero points clamped to [1, 2^bits − 1] (or a symmetric grid) for GPTQ export, or export the edgeq format',
          );
        }
      }
      for (let c = 0; c < q.k; c++) if (gIdx[c] === g) codes[row + c]! += 1;
      zeros[r * G + g] = 1;
    }
  }
  return { codes, zeros };
}
