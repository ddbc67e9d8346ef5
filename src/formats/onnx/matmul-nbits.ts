/**
 * edgeq's integer grids → the inputs of onnxruntime's `com.microsoft.MatMulNBits` (contrib op):
 *
 *   B            uint8 [N, kBlocks, blobSize]   kBlocks = ceil(K / blockSize), blobSize = blockSize·bits/8;
 *                                               codes of one block packed LSB-first (4-bit: element 2i in the
 *                                               low nibble of byte i), the padding of the last block zero
 *   scales       float [N, kBlocks]
 *   zero_points  uint8 [N, ceil(kBlocks·bits/8)] packed the same way (omitted for symmetric grids: the
 *                                               op's default zero point 2^(bits−1) is edgeq's sym zero)
 *
 *   Y = A · Bᵀ,  B[n, k] = scale[n, blk(k)] · (code[n, k] − zero[n, blk(k)])
 *
 * Act-order (GPTQ desc_act: column k uses group g_idx[k], non-monotonic): when every group holds exactly
 * groupSize columns (as GPTQ produces), the columns are permuted so that groups become contiguous, and the
 * graph gathers the activation's columns with the same permutation (`inputPerm`) — a plain MatMulNBits
 * every execution provider runs. Otherwise the op's g_idx input is used (int32 [K], the block of each
 * column); onnxruntime 1.23's CPU kernel mis-reads packed uint8 zero points together with g_idx, so the
 * zero points of that path are written unpacked as float [N, kBlocks] (measured in the unit test).
 *
 * MatMulNBits wants a power-of-two block_size ≥ 16. An edgeq group whose size is a multiple of such a block
 * size is written as several blocks repeating the group's scale and zero (lossless), and so is a
 * per-channel grid (one group spanning K, e.g. stories260K's K = 172). Anything else is refused.
 */
import { UnsupportedError } from '../../core/errors.js';
import type { QuantizedWeight } from '../../qtypes/types.js';

/**
 * Bit widths edgeq exports as MatMulNBits: 4 and 8 run in onnxruntime 1.23's CPU kernel (verified in the
 * unit test); its constructor rejects 2-bit, and 3-bit has no MatMulNBits layout.
 */
export const MATMUL_NBITS_BITS: readonly number[] = [4, 8];
const BLOCK_SIZES = [128, 64, 32, 16];

export interface MatMulNBitsWeight {
  n: number;
  k: number;
  bits: number;
  blockSize: number;
  kBlocks: number;
  blobSize: number;
  /** [n, kBlocks, blobSize] */
  b: Uint8Array;
  /** [n, kBlocks] */
  scales: Float32Array;
  /** [n, zpBlobSize] packed uint8, or [n, kBlocks] float (g_idx path); null when symmetric (default zero point). */
  zeroPoints: { dtype: 'UINT8'; data: Uint8Array; dims: [number, number] } | { dtype: 'FLOAT'; data: Float32Array; dims: [number, number] } | null;
  /** [k] block index per input column (act-order whose groups cannot be made contiguous), or null. */
  gIdx: Int32Array | null;
  /** Act-order: the input columns in the order B's columns are stored (Gather the activation with it), or null. */
  inputPerm: Int32Array | null;
}

/** For act-order g_idx: the column order that makes every group contiguous, or null when groups are uneven. */
function contiguousGroupOrder(q: QuantizedWeight): Int32Array | null {
  const gIdx = q.gIdx!;
  const counts = new Int32Array(q.numGroups);
  for (const g of gIdx) counts[g]++;
  for (let g = 0; g < q.numGroups; g++) {
    const expected = g < q.numGroups - 1 ? q.groupSize : q.k - (q.numGroups - 1) * q.groupSize;
    if (counts[g] !== expected) return null;
  }
  const next = Int32Array.from({ length: q.numGroups }, (_, g) => g * q.groupSize);
  const perm = new Int32Array(q.k);
  for (let c = 0; c < q.k; c++) perm[next[gIdx[c]]++] = c; // stable: ascending columns within a group
  return perm;
}

/** Why a weight cannot be a MatMulNBits, or null when it can. */
export function matmulNBitsProblem(q: Pick<QuantizedWeight, 'grid' | 'k' | 'groupSize' | 'numGroups'>): string | null {
  if (!MATMUL_NBITS_BITS.includes(q.grid.bits)) {
    return `${q.grid.bits}-bit weights: MatMulNBits is exported at ${MATMUL_NBITS_BITS.join(' and ')} bits (onnxruntime's CPU kernel rejects 2-bit; 3-bit has no MatMulNBits layout)`;
  }
  if (q.numGroups > 1 && !BLOCK_SIZES.some((b) => q.groupSize % b === 0)) {
    return `group size ${q.groupSize} is not a multiple of a MatMulNBits block size (16, 32, 64 or 128)`;
  }
  return null;
}

/** The block size a weight is written with: its group size when that is one, else the largest divisor. */
export function matmulNBitsBlockSize(q: Pick<QuantizedWeight, 'k' | 'groupSize' | 'numGroups'>): number {
  if (q.numGroups === 1) {
    // Per channel: any block size reproduces it; the largest that does not exceed K (at least 16).
    return BLOCK_SIZES.find((b) => b <= q.k) ?? 16;
  }
  return BLOCK_SIZES.find((b) => q.groupSize % b === 0)!;
}

/** Packs `q` for MatMulNBits; throws UnsupportedError (with the reason) for grids it cannot hold. */
export function packMatMulNBits(q: QuantizedWeight, name = 'weight'): MatMulNBitsWeight {
  const problem = matmulNBitsProblem(q);
  if (problem) {
    throw new UnsupportedError(
      'E_ONNX_GRID',
      `${name}: cannot be written as com.microsoft.MatMulNBits: ${problem}`,
      're-quantize with --bits 4 and --group-size 32, 64 or 128 (or per channel), or export with --target gguf',
    );
  }
  const { n, k } = q;
  const bits = q.grid.bits;
  const blockSize = matmulNBitsBlockSize(q);
  const kBlocks = Math.ceil(k / blockSize);
  const blobSize = (blockSize * bits) / 8;
  const perByte = 8 / bits;
  const inputPerm = q.gIdx ? contiguousGroupOrder(q) : null;
  const useGIdx = q.gIdx !== null && inputPerm === null;
  if (useGIdx && bits !== 4)
    throw new UnsupportedError('E_ONNX_GRID', `${name}: act-order groups of unequal size need MatMulNBits' g_idx input, which onnxruntime dequantizes at 4 bits only`, 're-quantize with --bits 4');
  // Block j of a row takes the scale/zero of group groupOfBlock(j).
  const groupOfBlock = (j: number): number => (q.numGroups === 1 ? 0 : Math.floor((j * blockSize) / q.groupSize));
  const b = new Uint8Array(n * kBlocks * blobSize);
  for (let r = 0; r < n; r++) {
    const src = r * k;
    const dst = r * kBlocks * blobSize;
    for (let i = 0; i < k; i++) {
      // Column i sits in block floor(i / blockSize) at offset i % blockSize; blocks are contiguous in a row
      // and blockSize is a multiple of perByte, so that is byte floor(i / perByte) of the row.
      const code = q.codes[src + (inputPerm ? inputPerm[i] : i)];
      b[dst + Math.floor(i / perByte)] |= code << ((i % perByte) * bits);
    }
  }
  const scales = new Float32Array(n * kBlocks);
  for (let r = 0; r < n; r++) for (let j = 0; j < kBlocks; j++) scales[r * kBlocks + j] = q.scales[r * q.numGroups + groupOfBlock(j)];
  let zeroPoints: MatMulNBitsWeight['zeroPoints'] = null;
  if (!q.grid.sym && useGIdx) {
    const data = new Float32Array(n * kBlocks);
    for (let r = 0; r < n; r++) for (let j = 0; j < kBlocks; j++) data[r * kBlocks + j] = q.zeros[r * q.numGroups + groupOfBlock(j)];
    zeroPoints = { dtype: 'FLOAT', data, dims: [n, kBlocks] };
  } else if (!q.grid.sym) {
    const zpBlobSize = Math.ceil((kBlocks * bits) / 8);
    const data = new Uint8Array(n * zpBlobSize);
    for (let r = 0; r < n; r++) {
      for (let j = 0; j < kBlocks; j++) {
        data[r * zpBlobSize + Math.floor(j / perByte)] |= q.zeros[r * q.numGroups + groupOfBlock(j)] << ((j % perByte) * bits);
      }
    }
    zeroPoints = { dtype: 'UINT8', data, dims: [n, zpBlobSize] };
  }
  let gIdx: Int32Array | null = null;
  if (useGIdx) {
    // The first block of the column's group carries that group's scale and zero.
    const blocksPerGroup = q.numGroups === 1 ? kBlocks : q.groupSize / blockSize;
    gIdx = Int32Array.from(q.gIdx!, (g) => g * blocksPerGroup);
  }
  return { n, k, bits, blockSize, kBlocks, blobSize, b, scales, zeroPoints, gIdx, inputPerm };
}
