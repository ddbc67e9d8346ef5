/**
 * The export targets, one table: each row names a target, what it writes, its native types (the grids it
 * stores without loss) and how to run it. `edgeq export --target <id>` and its --help read this table; a
 * new format adds a row.
 */
import { UsageError } from '../core/errors.js';
import { WRITABLE_TYPES, type WritableType } from '../formats/gguf/tensor-types.js';

export interface ExportRequest {
  modelDir: string;
  out: string;
  /** Target-specific weight type (e.g. GGUF q4_0). */
  type?: string;
  allowRequantize?: boolean;
  /** Original float model, for error growth statements when requantizing. */
  originalDir?: string;
  onProgress?: (done: number, total: number, detail: string) => void;
}

export interface ExportOutcome {
  target: string;
  path: string;
  bytes: number;
  /** Machine-readable details (printed under --json). */
  details: Record<string, unknown>;
  /** Human-readable lines for the terminal. */
  lines: string[];
  warnings: string[];
}

export interface ExportTarget {
  id: string;
  description: string;
  /** 'file' (one output file) or 'folder'. */
  output: 'file' | 'folder';
  /** Weight types the target can hold (the first is the default for float sources). */
  types: readonly string[];
  /** Which edgeq grids map onto a native type with no requantization, in words. */
  lossless: string;
  run(req: ExportRequest): Promise<ExportOutcome>;
}

export const EXPORT_TARGETS: readonly ExportTarget[] = [
  {
    id: 'gguf',
    description: 'llama.cpp GGUF v3 (one file)',
    output: 'file',
    types: WRITABLE_TYPES,
    lossless: 'int4 sym g32 → Q4_0, int8 sym g32 → Q8_0 per tensor, mixed in one file (same integers and fp16 scales); fp16 linears stay F16; low-rank linears only expanded to U·V with --allow-requantize',
    async run(req) {
      const { exportGguf } = await import('./gguf-export.js');
      const type = req.type === undefined ? undefined : checkType(req.type, WRITABLE_TYPES);
      const r = await exportGguf({
        modelDir: req.modelDir,
        out: req.out,
        ...(type ? { type: type as WritableType } : {}),
        allowRequantize: req.allowRequantize,
        originalDir: req.originalDir,
        onProgress: (d, t, name) => req.onProgress?.(d, t, name),
      });
      const types = new Map<string, number>();
      for (const t of r.tensors) types.set(t.type, (types.get(t.type) ?? 0) + 1);
      const lines = [
        `wrote      ${r.path} (${(r.bytes / 1e6).toFixed(2)} MB, GGUF v3, file type ${r.fileType})`,
        `tensors    ${r.tensors.length}: ${[...types].map(([k, v]) => `${k} ×${v}`).join(' · ')}`,
        `how        ${Object.entries(r.counts).filter(([, v]) => v).map(([k, v]) => `${k} ${v}`).join(' · ')}`,
        ...r.tensors.filter((t) => t.note).map((t) => `note       ${t.name}: ${t.note}`),
      ];
      return { target: 'gguf', path: r.path, bytes: r.bytes, details: r as unknown as Record<string, unknown>, lines, warnings: r.warnings };
    },
  },
  {
    id: 'onnx',
    description: 'ONNX Runtime folder (model.onnx + external data; com.microsoft.MatMulNBits, KV cache as inputs/outputs)',
    output: 'folder',
    types: ['matmulnbits', 'float'],
    lossless: 'int4/int8, group 16-128 or per channel, sym or asym, act-order → MatMulNBits with the same integers and scales; float keeps fp32 MatMuls',
    async run(req) {
      const { exportOnnx } = await import('../formats/onnx/export-onnx.js');
      const type = req.type === undefined ? 'matmulnbits' : checkType(req.type, ['matmulnbits', 'float']);
      const r = await exportOnnx({
        modelDir: req.modelDir,
        outDir: req.out,
        overwrite: true, // the CLI refuses an existing --out without --overwrite before calling
        quantized: type === 'float' ? 'dequantized' : 'matmulnbits',
        requantize: req.allowRequantize ? { bits: 4, groupSize: 32, sym: false } : undefined,
        lowRank: req.allowRequantize ? 'expand' : 'refuse',
        ...(type === 'float' ? {} : { lowRankGrid: { bits: 4, groupSize: 32, sym: false } }),
      });
      const requant = r.graph.linears.filter((l) => l.requantized);
      const warnings = requant.map((l) => `${l.weight}: re-quantized ${l.requantized!.from} → ${l.requantized!.to} for MatMulNBits (rel. weight error ${l.requantized!.relError.toExponential(2)})`);
      warnings.push(...r.lowRankExpanded.map((l) => `${l.weight}: low-rank (rank ${l.rank}) expanded to U·V${l.to === 'float' ? ' (float MatMul)' : ` and quantized to ${l.to} (rel. weight error ${l.relError.toExponential(2)})`}`));
      const nbits = r.graph.linears.filter((l) => l.kind === 'matmulnbits').length;
      const lines = [
        `wrote      ${r.outDir} (model.onnx ${(r.modelBytes / 1e6).toFixed(2)} MB + model.onnx.data ${(r.dataBytes / 1e6).toFixed(2)} MB, opset 17 + com.microsoft)`,
        `graph      ${r.nodes} nodes, ${r.initializers} initializers; linears: ${nbits} MatMulNBits, ${r.graph.linears.length - nbits} MatMul`,
        `inputs     input_ids, attention_mask, position_ids, past_key_values.{0..${r.config.numLayers - 1}}.key/value → logits, present.*`,
      ];
      const details = { outDir: r.outDir, modelFile: r.modelFile, dataFile: r.dataFile, modelBytes: r.modelBytes, dataBytes: r.dataBytes, nodes: r.nodes, initializers: r.initializers, linears: r.graph.linears };
      return { target: 'onnx', path: r.outDir, bytes: r.modelBytes + r.dataBytes, details, lines, warnings };
    },
  },
  {
    id: 'qnn',
    description: 'Qualcomm QNN/AIMET input folder: ONNX with float MatMul weights on the LPBQ W4 grid + model.encodings (1.0.0; LPBQ params, 16-bit activations from calibration) for qnn-onnx-converter --quantization_overrides',
    output: 'folder',
    types: ['lpbq'],
    lossless: 'int4 sym whose block scales are integer multiples (1-16) of a per-channel scale; other grids are re-expressed on the LPBQ grid (error reported per linear)',
    async run(req) {
      const { exportQnnCalibrated } = await import('../formats/qnn/export-qnn-calibrated.js');
      const { createWasmBackend } = await import('../kernels/wasm-backend.js');
      if (req.type !== undefined) checkType(req.type, ['lpbq']);
      const backend = await createWasmBackend({});
      try {
        const r = await exportQnnCalibrated({ modelDir: req.modelDir, outDir: req.out, overwrite: true, backend, allowRequantize: req.allowRequantize });
        const worst = r.weights.reduce((a, w) => Math.max(a, w.relError), 0);
        const lines = [
          `wrote      ${r.onnx.outDir} (model.onnx + model.onnx.data ${(r.onnx.dataBytes / 1e6).toFixed(2)} MB, model.encodings)`,
          `encodings  ${r.encodings.param_encodings.length} param (${r.weights.filter((w) => w.encType === 'LPBQ').length} LPBQ, ${r.weights.filter((w) => w.encType === 'PER_CHANNEL').length} per-channel W4), ${r.encodings.activation_encodings.length} activation (16-bit, ${r.calibration.rows} × ${r.calibration.seqLen} ${r.calibration.source} tokens)`,
          `grid       re-expressed on LPBQ: worst rel. weight change ${worst.toExponential(2)}`,
          `run        qnn-onnx-converter --input_network model.onnx --quantization_overrides model.encodings --act_bitwidth 16 --weights_bitwidth 4 --bias_bitwidth 32`,
        ];
        const details = { outDir: r.onnx.outDir, encodingsFile: r.encodingsFile, weights: r.weights, calibration: r.calibration, activationEncodings: r.encodings.activation_encodings.length };
        const warnings = r.onnx.lowRankExpanded.map((l) => `${l.weight}: low-rank (rank ${l.rank}) expanded to U·V and quantized to ${l.to} before its LPBQ fit (rel. weight error ${l.relError.toExponential(2)})`);
        return { target: 'qnn', path: r.onnx.outDir, bytes: r.onnx.modelBytes + r.onnx.dataBytes, details, lines, warnings };
      } finally {
        await backend.dispose();
      }
    },
  },
  {
    id: 'snapdragon',
    description: 'a Snapdragon deployment folder: gguf/ (Q4_0 for llama.cpp CPU/Adreno/Hexagon), qnn/ (ONNX W4A16 on the LPBQ grid + AIMET/QNN encodings), manifest.json (sizes, memory, decode roofline for 8 Gen 3 / X Elite), README.md',
    output: 'folder',
    types: ['q4_0'],
    lossless: 'int4 sym g32 (`edgeq quantize --target snapdragon`) → Q4_0 with the same integers and fp16 scales; the QNN part re-expresses it on the LPBQ grid (change reported)',
    async run(req) {
      const { exportSnapdragonBundle } = await import('./snapdragon-bundle.js');
      const { createWasmBackend } = await import('../kernels/wasm-backend.js');
      if (req.type !== undefined) checkType(req.type, ['q4_0']);
      const backend = await createWasmBackend({});
      try {
        const r = await exportSnapdragonBundle({ modelDir: req.modelDir, outDir: req.out, backend, allowRequantize: req.allowRequantize, overwrite: true, onStep: (s) => req.onProgress?.(0, 1, s) });
        const m = r.manifest;
        const lines = [
          `wrote      ${r.outDir}: gguf/model-q4_0.gguf (${(m.gguf.bytes / 1e6).toFixed(2)} MB${m.gguf.lossless ? ', lossless repack' : ', requantized'}), qnn/ (ONNX + ${m.qnn.encodings}), manifest.json, README.md`,
          `size       ${m.params.toLocaleString('en-US')} params, ${m.bitsPerWeight.toFixed(2)} bits/weight; memory at ctx ${m.ctx}: ${(m.peakMemoryBytes / 1e6).toFixed(1)} MB (KV ${(m.kvCacheBytes / 1e6).toFixed(1)} MB)`,
          ...m.estimates.map((e) => `roofline   ${e.name}: ≤ ${e.decodeTokPerSec.toFixed(1)} tok/s decode at ctx ${m.ctx} (${e.bandwidthGBs.toFixed(1)} GB/s)${e.fitsUsableMemory ? '' : ' — does NOT fit its usable memory'}`),
        ];
        return { target: 'snapdragon', path: r.outDir, bytes: m.gguf.bytes, details: m as unknown as Record<string, unknown>, lines, warnings: r.warnings };
      } finally {
        await backend.dispose();
      }
    },
  },
  {
    id: 'gptq',
    description: 'AutoGPTQ v1 safetensors folder (qweight/qzeros/scales/g_idx + quantization_config) for transformers, vLLM, AutoGPTQ, GPTQModel',
    output: 'folder',
    types: ['gptq'],
    lossless: 'every edgeq grid of 2/3/4/8 bits with one group size for all linears, act-order included (same integers and fp16 scales; a zero point of 0 is re-expressed exactly as zero 1 with codes + 1 where possible, refused otherwise)',
    async run(req) {
      return hfQuantTarget('autogptq', req);
    },
  },
  {
    id: 'awq',
    description: 'AutoAWQ GEMM safetensors folder (interleaved int4 qweight/qzeros + fp16 scales + quantization_config) for transformers, vLLM, AutoAWQ',
    output: 'folder',
    types: ['awq'],
    lossless: 'int4 with one group size, no act-order, out features divisible by 8 (same integers and fp16 scales)',
    async run(req) {
      return hfQuantTarget('autoawq', req);
    },
  },
];

async function hfQuantTarget(format: 'autogptq' | 'autoawq', req: ExportRequest): Promise<ExportOutcome> {
  const { exportHfQuant } = await import('./hf-quant-export.js');
  if (req.type !== undefined) throw new UsageError('E_EXPORT_TYPE', `--type does not apply to --target ${format === 'autogptq' ? 'gptq' : 'awq'}`, 'the checkpoint\'s own grid is written');
  const r = await exportHfQuant(format, req.modelDir, req.out, { overwrite: true, onProgress: req.onProgress });
  const lines = [`wrote      ${r.outDir} (${format === 'autogptq' ? 'AutoGPTQ v1' : 'AutoAWQ GEMM'} layout: ${r.quantized} quantized linears, ${r.dense} dense tensors in fp16, quantization_config in config.json)`];
  return { target: format === 'autogptq' ? 'gptq' : 'awq', path: r.outDir, bytes: 0, details: r as unknown as Record<string, unknown>, lines, warnings: [] };
}

export function findTarget(id: string): ExportTarget {
  const t = EXPORT_TARGETS.find((x) => x.id === id);
  if (!t) throw new UsageError('E_TARGET', `unknown export target '${id}'`, `targets: ${EXPORT_TARGETS.map((x) => x.id).join(', ')}`);
  return t;
}

function checkType(type: string, allowed: readonly string[]): string {
  const t = type.toLowerCase();
  if (!allowed.includes(t)) throw new UsageError('E_EXPORT_TYPE', `--type ${type} is not a type of this target`, `types: ${allowed.join(', ')}`);
  return t;
}
