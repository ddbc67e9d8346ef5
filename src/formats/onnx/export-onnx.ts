/**
 * `edgeq export --target onnx`: a model folder (Hugging Face or edgeq-quantized) → an ONNX folder
 *
 *   <out>/model.onnx        the graph (llama-graph.ts) and small constants
 *   <out>/model.onnx.data   every initializer ≥ 1 KiB, 64-byte aligned (ONNX external data), streamed
 *                           tensor by tensor as the graph is built
 *   <out>/config.json, tokenizer files (copied)
 *
 * written into a temporary folder and renamed into place (the output either appears complete or not at
 * all). Quantized linears become com.microsoft.MatMulNBits; grids it cannot hold are refused up front,
 * before anything is written, with the reason. Low-rank linears (edgeq) are refused unless `lowRank:
 * 'expand'`: then each is expanded to U·V and quantized onto `lowRankGrid` (MatMulNBits / QNN), or kept as the
 * float product (float export), see src/export/lowrank-source.ts.
 */
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import type { LlamaConfig } from '../../arch/llama-config.js';
import { openAtomicFile, type AtomicFile } from '../../core/atomic-write.js';
import { UnsupportedError } from '../../core/errors.js';
import { readModelConfig } from '../../model/model-dir.js';
import { getQType, listQTypes } from '../../qtypes/registry.js';
import type { GridSpec } from '../../qtypes/types.js';
import { openWeightSource, type WeightSource } from '../../model/weight-source.js';
import { expandLowRankSource, lowRankTensors, refuseLowRank, type LowRankExpansion } from '../../export/lowrank-source.js';
import { withAtomicDir } from '../edgeq/atomic-dir.js';
import { copyModelSideFiles } from '../edgeq/side-files.js';
import { GraphBuilder, type InitializerSink } from './graph-builder.js';
import { buildLlamaGraph, type LlamaGraphInfo, type OnnxWeightProvider } from './llama-graph.js';
import { matmulNBitsProblem } from './matmul-nbits.js';
import { encodeModel, type TensorPayload } from './onnx-model.js';

export const ONNX_MODEL_FILE = 'model.onnx';
export const ONNX_DATA_FILE = 'model.onnx.data';
export const ONNX_OPSET = 17;
/** IR version 8 (ONNX 1.13, opset 17). */
export const ONNX_IR_VERSION = 8;
const EXTERNAL_MIN_BYTES = 1024;
const EXTERNAL_ALIGN = 64;

export interface OnnxExportOptions {
  modelDir: string;
  outDir: string;
  overwrite?: boolean;
  /** 'matmulnbits' (default) or 'dequantized' (float MatMuls; the QNN/AIMET path). */
  quantized?: 'matmulnbits' | 'dequantized';
  /** Longest sequence the graph accepts (RoPE cache rows; default max_position_embeddings). */
  maxPositions?: number;
  /** Re-quantize linears MatMulNBits cannot hold onto this grid instead of refusing (e.g. { bits: 4, groupSize: 32, sym: false }). */
  requantize?: GridSpec;
  producerVersion?: string;
  onTensor?: (name: string) => void;
  /** Wraps the checkpoint's weights (e.g. the QNN export re-expresses quantized linears on the LPBQ grid). */
  weights?: (src: WeightSource) => OnnxWeightProvider;
  /** Low-rank linears: refused (default) or expanded to the dense U·V (see src/export/lowrank-source.ts). */
  lowRank?: 'refuse' | 'expand';
  /**
   * Grid an expanded low-rank product is quantized onto (per channel where the group size does not divide
   * k); without it the product stays float (only for quantized: 'dequantized' without a weights wrapper).
   */
  lowRankGrid?: GridSpec;
  /** Called with the temporary folder before it is renamed into place, to add files (e.g. encodings). */
  beforeCommit?: (tmpDir: string, result: OnnxExportResult) => Promise<void>;
}

export interface OnnxExportResult {
  outDir: string;
  modelFile: string;
  dataFile: string;
  modelBytes: number;
  dataBytes: number;
  config: LlamaConfig;
  graph: LlamaGraphInfo;
  nodes: number;
  initializers: number;
  /** Low-rank linears expanded to U·V (and quantized onto lowRankGrid), with the weight error. */
  lowRankExpanded: LowRankExpansion[];
}

/** Streams initializers into the external data file (large ones) or keeps them inline (small ones). */
class ExternalDataSink implements InitializerSink {
  constructor(
    private readonly file: AtomicFile,
    private readonly location: string,
  ) {}

  async put(_name: string, bytes: Uint8Array): Promise<TensorPayload> {
    if (bytes.length < EXTERNAL_MIN_BYTES) return { kind: 'raw', bytes: bytes.slice() };
    const pad = (EXTERNAL_ALIGN - (this.file.position % EXTERNAL_ALIGN)) % EXTERNAL_ALIGN;
    if (pad) await this.file.write(new Uint8Array(pad));
    const offset = this.file.position;
    await this.file.write(bytes);
    return { kind: 'external', location: this.location, offset, length: bytes.length };
  }
}

/** Refuses (before writing anything) a checkpoint with a quantized linear MatMulNBits cannot hold. */
function checkGrids(src: WeightSource, quantized: OnnxExportOptions['quantized']): void {
  if (src.kind !== 'edgeq' || quantized === 'dequantized') return;
  const ids = new Set(listQTypes().map((t) => t.id));
  for (const [name, t] of src.tensors) {
    if (!ids.has(t.dtype) || t.shape.length !== 2) continue;
    const grid = getQType(t.dtype).grid;
    const k = t.shape[1];
    const groupSize = grid.groupSize === -1 ? k : grid.groupSize;
    const problem = matmulNBitsProblem({ grid, k, groupSize, numGroups: Math.ceil(k / groupSize) });
    if (problem)
      throw new UnsupportedError(
        'E_ONNX_GRID',
        `${name} (${t.dtype}) cannot be exported as com.microsoft.MatMulNBits: ${problem}`,
        'allow re-quantization to int4 (--allow-requantize), re-quantize with --bits 4 and --group-size 32, 64 or 128 (or per channel), or use --target gguf',
      );
  }
}

export async function exportOnnx(opts: OnnxExportOptions): Promise<OnnxExportResult> {
  const { config } = readModelConfig(opts.modelDir);
  const opened = await openWeightSource(opts.modelDir, { checkFinite: true });
  const lowRankExpanded: LowRankExpansion[] = [];
  let src: WeightSource = opened;
  try {
    if (opts.lowRank !== 'expand') {
      refuseLowRank('onnx', src, opts.quantized === 'dequantized' ? 'keep it as a float MatMul' : 'quantize it to int4 g32 for MatMulNBits');
    } else if (opts.lowRankGrid) {
      src = expandLowRankSource(src, opts.lowRankGrid, lowRankExpanded);
    } else if (opts.quantized !== 'dequantized' || opts.weights) {
      throw new UnsupportedError('E_ONNX_LOWRANK', 'expanding low-rank linears into a quantized graph needs a grid (lowRankGrid)');
    } else {
      for (const t of lowRankTensors(src)) lowRankExpanded.push({ weight: t.name, rank: t.rank, to: 'float', relError: 0 });
    }
    if (!opts.requantize) checkGrids(src, opts.quantized);
    return await withAtomicDir(opts.outDir, { overwrite: opts.overwrite }, async (tmp) => {
      const data = await openAtomicFile(path.join(tmp, ONNX_DATA_FILE));
      let info: LlamaGraphInfo;
      let g: GraphBuilder;
      try {
        g = new GraphBuilder(new ExternalDataSink(data, ONNX_DATA_FILE));
        info = await buildLlamaGraph(g, config, opts.weights ? opts.weights(src) : src, { quantized: opts.quantized, maxPositions: opts.maxPositions, requantize: opts.requantize, onTensor: opts.onTensor });
        await data.commit();
      } catch (err) {
        await data.abort();
        throw err;
      }
      const bytes = encodeModel({
        irVersion: ONNX_IR_VERSION,
        opsets: [
          { domain: '', version: ONNX_OPSET },
          { domain: 'com.microsoft', version: 1 },
        ],
        producerName: 'edgeq',
        producerVersion: opts.producerVersion ?? '0',
        graph: g.graph(`${config.modelType}-decoder`),
        metadata: { 'edgeq.source': path.basename(path.resolve(opts.modelDir)), 'edgeq.weights': src.kind === 'edgeq' ? (opts.quantized ?? 'matmulnbits') : 'dense' },
      });
      const model = await openAtomicFile(path.join(tmp, ONNX_MODEL_FILE));
      try {
        await model.write(bytes);
        await model.commit();
      } catch (err) {
        await model.abort();
        throw err;
      }
      await copyModelSideFiles(opts.modelDir, tmp);
      const dataBytes = (await fsp.stat(path.join(tmp, ONNX_DATA_FILE))).size;
      const result: OnnxExportResult = {
        outDir: path.resolve(opts.outDir),
        modelFile: path.join(path.resolve(opts.outDir), ONNX_MODEL_FILE),
        dataFile: path.join(path.resolve(opts.outDir), ONNX_DATA_FILE),
        modelBytes: bytes.length,
        dataBytes,
        config,
        graph: info,
        nodes: g.nodes.length,
        initializers: g.initializers.length,
        lowRankExpanded,
      };
      await opts.beforeCommit?.(tmp, result);
      return result;
    });
  } finally {
    await src.close();
  }
}
