/**
 * Execution targets — what hardware runs natively — side by side with the export targets
 * (src/export/targets.ts) they ship through. One row per target:
 *
 *   grid      the grid `edgeq quantize --target <id>` quantizes on, so that the export repacks the very
 *             integers and scales (no requantization)
 *   native    the integer grids the target executes without conversion; a logical type it lacks is
 *             lowered to the nearest native one (lowerToTarget)
 *   export    the export target that writes its files
 *
 * snapdragon-cpu: llama.cpp's Q4_0 / Q8_0 (blocks of 32, one fp16 scale, int8 dot products after the
 *                 runtime ARM repack); snapdragon-npu: QNN HTP W4/W8 with 16-bit activations (LPBQ blocks
 *                 of 32-128 on v73+); x86: llama.cpp's AVX2 int8 paths on the same blocks; wasm: edgeq's
 *                 own LUT / int8-dot kernels (2/3/4/8 bits, groups 32/64/128 or per channel, sym or asym).
 */
import { UsageError } from '../core/errors.js';
import type { Bits, GridSpec } from '../qtypes/types.js';

export interface ExecutionTarget {
  id: string;
  description: string;
  grid: GridSpec;
  /** Export target id (src/export/targets.ts). */
  export: string;
  native: readonly GridSpec[];
  /** The export holds low-rank factors (only edgeq's own checkpoint does); elsewhere low rank is not native. */
  lowRank: boolean;
  /**
   * How the export re-encodes a quantized weight on the device, when it is not stored as is: 'npu' = the
   * QNN encodings (src/formats/qnn/npu-weight.ts: LPBQ for ≤ 4 bits, per-channel int8). The ladder prices
   * that rung on the re-encoded weights and their device bytes.
   */
  codec?: 'npu';
}

const g = (bits: Bits, groupSize: number, sym: boolean): GridSpec => ({ bits, groupSize, sym });
const ALL_EDGEQ: GridSpec[] = [];
for (const bits of [2, 3, 4, 8] as Bits[]) for (const gs of [32, 64, 128, -1]) for (const sym of [true, false]) ALL_EDGEQ.push(g(bits, gs, sym));

export const EXECUTION_TARGETS: readonly ExecutionTarget[] = [
  {
    id: 'snapdragon',
    description: 'Snapdragon phones and laptops: llama.cpp Q4_0 on the CPU/Adreno/Hexagon plus the QNN W4A16 folder',
    grid: g(4, 32, true),
    export: 'snapdragon',
    native: [g(4, 32, true), g(8, 32, true)],
    lowRank: false,
  },
  {
    id: 'snapdragon-cpu',
    description: 'Snapdragon CPUs through llama.cpp: GGUF Q4_0 / Q8_0 (int8 dot products after the runtime ARM repack)',
    grid: g(4, 32, true),
    export: 'gguf',
    native: [g(4, 32, true), g(8, 32, true)],
    lowRank: false,
  },
  {
    id: 'snapdragon-npu',
    description: 'Qualcomm Hexagon NPU through QNN: W4/W8 weights (LPBQ blocks), 16-bit activations',
    grid: g(4, 32, true),
    export: 'qnn',
    native: [g(4, 32, true), g(4, 64, true), g(4, 128, true), g(4, -1, true), g(8, -1, true)],
    lowRank: false,
    codec: 'npu',
  },
  {
    id: 'x86',
    description: 'x86 CPUs through llama.cpp: GGUF Q4_0 / Q8_0 on the AVX2 int8 paths',
    grid: g(4, 32, true),
    export: 'gguf',
    native: [g(4, 32, true), g(8, 32, true)],
    lowRank: false,
  },
  {
    id: 'gguf-q4_0',
    description: 'llama.cpp anywhere (x86 AVX2, ARM dotprod): GGUF Q4_0',
    grid: g(4, 32, true),
    export: 'gguf',
    native: [g(4, 32, true), g(8, 32, true)],
    lowRank: false,
  },
  {
    id: 'gguf-q8_0',
    description: 'llama.cpp anywhere: GGUF Q8_0',
    grid: g(8, 32, true),
    export: 'gguf',
    native: [g(8, 32, true), g(4, 32, true)],
    lowRank: false,
  },
  {
    id: 'onnx',
    description: 'ONNX Runtime com.microsoft.MatMulNBits (CPU, QNN GPU)',
    grid: g(4, 32, false),
    export: 'onnx',
    native: ALL_EDGEQ.filter((x) => (x.bits === 4 || x.bits === 8) && x.groupSize !== -1),
    lowRank: false,
  },
  {
    id: 'wasm',
    description: "edgeq's own WebAssembly core (Node and browsers): LUT kernels for 2/3/4 bits, int8-dot for 8",
    grid: g(4, 128, false),
    export: 'edgeq',
    native: ALL_EDGEQ,
    lowRank: true,
  },
];

export function findExecutionTarget(id: string): ExecutionTarget {
  const t = EXECUTION_TARGETS.find((x) => x.id === id);
  if (!t) throw new UsageError('E_TARGET', `unknown target '${id}'`, `targets: ${EXECUTION_TARGETS.map((x) => x.id).join(', ')}`);
  return t;
}

const same = (a: GridSpec, b: GridSpec): boolean => a.bits === b.bits && a.groupSize === b.groupSize && a.sym === b.sym;

export function isNative(t: ExecutionTarget, grid: GridSpec): boolean {
  return t.native.some((n) => same(n, grid));
}

/**
 * The native grid a logical grid is stored as on the target: itself when native, else the cheapest native
 * grid with at least its bits (int3 → 4-bit codes) whose groups are no coarser (g128 scales expanded to the
 * target's blocks of 32), preferring the same symmetry. Null when nothing native can hold it.
 */
export function lowerToTarget(t: ExecutionTarget, grid: GridSpec): GridSpec | null {
  if (isNative(t, grid)) return grid;
  const gsOf = (x: GridSpec): number => (x.groupSize === -1 ? Infinity : x.groupSize);
  const cands = t.native.filter((n) => n.bits >= grid.bits && gsOf(n) <= gsOf(grid));
  if (cands.length === 0) return null;
  cands.sort((a, b) => a.bits - b.bits || Number(b.sym === grid.sym) - Number(a.sym === grid.sym) || gsOf(b) - gsOf(a));
  return cands[0]!;
}
