/**
 * `edgeq export --target snapdragon`: one deployable folder for Snapdragon devices (see FORMATS.md §3(f)):
 *
 *   gguf/model-q4_0.gguf   llama.cpp — Q4_0 is what its fast Snapdragon paths take: CPU (runtime repack to
 *                          the interleaved dotprod/i8mm layouts), Adreno (OpenCL) and Hexagon backends
 *   qnn/                   model.onnx (+ .data) with W4 weights on the LPBQ grid and model.encodings
 *                          (AIMET/QNN 1.0.0: LPBQ weight entries, 16-bit activation ranges from calibration)
 *                          for `qnn-onnx-converter --quantization_overrides`
 *   manifest.json          per-tensor types and sizes, bits per weight, memory at the context length, and a
 *                          decode-speed roofline per device (bytes read per token ÷ the device's bandwidth)
 *   README.md              how to run each part
 *
 * Quantize on the target's grid first (`edgeq quantize --target snapdragon`: int4, group 32, symmetric —
 * Q4_0's grid) and the GGUF holds exactly the checkpoint's integers and scales; another grid is requantized
 * only with allowRequantize. Written atomically (temporary folder, renamed when complete).
 */
import fs from 'node:fs';
import path from 'node:path';
import { findDevice, type Device } from '../devices/devices.js';
import { kvCacheBytes } from '../devices/device-plan.js';
import { withAtomicDir } from '../formats/edgeq/atomic-dir.js';
import { GgufFile } from '../formats/gguf/reader.js';
import type { MatmulBackend } from '../kernels/backend.js';
import { readModelConfig } from '../model/model-dir.js';
import { exportGguf } from './gguf-export.js';
import { snapdragonReadme } from './snapdragon-readme.js';

/** The devices the manifest estimates for. */
export const SNAPDRAGON_DEVICES = ['snapdragon-8-gen-3', 'snapdragon-x-elite'] as const;
export const SNAPDRAGON_GRID = { bits: 4, groupSize: 32, sym: true } as const;

export interface SnapdragonBundleOptions {
  modelDir: string;
  outDir: string;
  backend: MatmulBackend;
  allowRequantize?: boolean;
  overwrite?: boolean;
  /** Context length for the memory and speed estimates (default 4096, the QNN LLM cards' context). */
  ctx?: number;
  onStep?: (step: string) => void;
}

export interface DeviceEstimate {
  device: string;
  name: string;
  bandwidthGBs: number;
  source: string;
  /** Decode tokens/s the memory bandwidth allows at the full context. */
  decodeTokPerSec: number;
  fitsUsableMemory: boolean;
}

export interface SnapdragonManifest {
  format: 'edgeq-snapdragon-bundle';
  version: 1;
  model: string;
  ctx: number;
  gguf: { file: string; bytes: number; fileType: string; lossless: boolean; tensors: { name: string; type: string; bytes: number }[] };
  qnn: { dir: string; encodings: string; lpbqWeights: number; perChannelWeights: number; activationEncodings: number; worstRelWeightChange: number };
  params: number;
  bitsPerWeight: number;
  bytesReadPerToken: number;
  kvCacheBytes: number;
  peakMemoryBytes: number;
  estimates: DeviceEstimate[];
  method: string;
}

export async function exportSnapdragonBundle(o: SnapdragonBundleOptions): Promise<{ outDir: string; manifest: SnapdragonManifest; warnings: string[] }> {
  const { config } = readModelConfig(o.modelDir);
  const ctx = Math.min(o.ctx ?? 4096, config.maxPositionEmbeddings);
  const warnings: string[] = [];
  const manifest = await withAtomicDir(o.outDir, { overwrite: o.overwrite }, async (tmp) => {
    fs.mkdirSync(path.join(tmp, 'gguf'));
    const ggufFile = path.join(tmp, 'gguf', 'model-q4_0.gguf');
    o.onStep?.('GGUF Q4_0 for llama.cpp');
    const g = await exportGguf({ modelDir: o.modelDir, out: ggufFile, type: 'q4_0', allowRequantize: o.allowRequantize });
    warnings.push(...g.warnings);
    o.onStep?.('ONNX W4A16 + QNN encodings');
    const { exportQnnCalibrated } = await import('../formats/qnn/export-qnn-calibrated.js');
    const q = await exportQnnCalibrated({ modelDir: o.modelDir, outDir: path.join(tmp, 'qnn'), overwrite: true, backend: o.backend, allowRequantize: o.allowRequantize });
    if (q.onnx.lowRankExpanded.length) {
      const worst = q.onnx.lowRankExpanded.reduce((a, e) => Math.max(a, e.relError), 0);
      warnings.push(`qnn: ${q.onnx.lowRankExpanded.length} low-rank linears expanded to U·V and quantized to int4 before their LPBQ fit (worst rel. weight error ${worst.toExponential(3)})`);
    }

    const gf = await GgufFile.open(ggufFile);
    let tensors: { name: string; type: string; bytes: number }[];
    try {
      tensors = gf.tensors.map((t) => ({ name: t.name, type: t.type.name, bytes: t.bytes }));
    } finally {
      await gf.close();
    }
    const params = gf.tensors.reduce((a, t) => a + t.elements, 0);
    const tensorBytes = tensors.reduce((a, t) => a + t.bytes, 0);
    // a decode step reads every tensor once, except the input embedding (one row) unless it is also the output
    const embd = tensors.find((t) => t.name === 'token_embd.weight');
    const embdRead = embd && !config.tieWordEmbeddings ? embd.bytes / config.vocabSize : 0;
    const bytesReadPerToken = tensorBytes - (embd && !config.tieWordEmbeddings ? embd.bytes : 0) + embdRead;
    const kv = kvCacheBytes(config, ctx);
    const peak = tensorBytes + kv;
    const estimates = SNAPDRAGON_DEVICES.map((id): DeviceEstimate => {
      const d: Device = findDevice(id);
      return {
        device: d.id,
        name: d.name,
        bandwidthGBs: d.bandwidth / 1e9,
        source: `${d.memory}; ${d.source}`,
        decodeTokPerSec: d.bandwidth / (bytesReadPerToken + kv),
        fitsUsableMemory: peak <= d.ramBytes * d.usableFraction,
      };
    });
    const m: SnapdragonManifest = {
      format: 'edgeq-snapdragon-bundle',
      version: 1,
      model: path.resolve(o.modelDir),
      ctx,
      gguf: { file: 'gguf/model-q4_0.gguf', bytes: g.bytes, fileType: g.fileType, lossless: g.counts.requantize === 0, tensors },
      qnn: {
        dir: 'qnn',
        encodings: path.relative(tmp, q.encodingsFile),
        lpbqWeights: q.weights.filter((w) => w.encType === 'LPBQ').length,
        perChannelWeights: q.weights.filter((w) => w.encType === 'PER_CHANNEL').length,
        activationEncodings: q.encodings.activation_encodings.length,
        worstRelWeightChange: q.weights.reduce((a, w) => Math.max(a, w.relError), 0),
      },
      params,
      bitsPerWeight: (8 * tensorBytes) / params,
      bytesReadPerToken,
      kvCacheBytes: kv,
      peakMemoryBytes: peak,
      estimates,
      method: 'decode tok/s = device peak DRAM bandwidth ÷ (GGUF bytes read per token + fp16 KV cache at ctx); an upper bound (real kernels reach ~50-80 % of it); peak memory = GGUF tensors + KV cache (compute buffers not counted)',
    };
    fs.writeFileSync(path.join(tmp, 'manifest.json'), `${JSON.stringify(m, null, 2)}\n`);
    fs.writeFileSync(path.join(tmp, 'README.md'), snapdragonReadme(m, path.basename(path.resolve(o.modelDir))));
    return m;
  });
  return { outDir: o.outDir, manifest, warnings };
}
