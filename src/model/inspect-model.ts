/**
 * What `edgeq inspect` reports: architecture, parameter count, dtypes and bytes per tensor group, and each
 * low-rank linear (rank, factor storage, bytes, bits per weight of the matrix it replaces). A low-rank linear
 * counts as n·k parameters of dtype 'lowrank' (the weight it stands for) with its factors' stored bytes.
 */
import path from 'node:path';
import type { LlamaConfig } from '../arch/llama-config.js';
import { expectedTensors } from '../arch/llama-tensors.js';
import { findArch } from '../arch/registry.js';
import { readModelConfig } from './model-dir.js';
import { validateCheckpointTensors } from './load-model.js';
import { openWeightSource } from './weight-source.js';

export interface TensorGroupSummary {
  group: string;
  tensors: number;
  params: number;
  bytes: number;
  dtypes: Record<string, number>;
}

/** A linear stored as low-rank factors W ≈ U (n, r) · V (r, k). */
export interface LowRankTensorSummary {
  name: string;
  n: number;
  k: number;
  rank: number;
  /** Storage of U and V: 'F16' or the quant type id. */
  u: string;
  v: string;
  /** Stored bytes of both factors (scales and zeros included). */
  bytes: number;
  /** 8 · bytes / (n · k): bits per weight of the original matrix. */
  bitsPerWeight: number;
}

export interface ModelInspection {
  dir: string;
  modelType: string;
  architecture: string;
  config: LlamaConfig;
  params: number;
  bytes: number;
  bitsPerWeight: number;
  dtypes: Record<string, number>;
  groups: TensorGroupSummary[];
  /** Low-rank linears (edgeq checkpoints), in file order; empty when there are none. */
  lowRank: LowRankTensorSummary[];
  metadata: Record<string, string>;
  finiteChecked: boolean;
}

export async function inspectModel(dir: string, opts: { checkFinite?: boolean } = {}): Promise<ModelInspection> {
  const { config } = readModelConfig(dir);
  const ckpt = await openWeightSource(dir, { checkFinite: true });
  try {
    validateCheckpointTensors(config, ckpt, dir);
    const groupOf = new Map(expectedTensors(config).map((t) => [t.name, t.group as string]));
    const groups = new Map<string, TensorGroupSummary>();
    const dtypes: Record<string, number> = {};
    let params = 0;
    let bytes = 0;
    const lowRank: LowRankTensorSummary[] = [];
    for (const [name, info] of ckpt.tensors) {
      if (info.lowRank) {
        const [n, k] = info.shape as [number, number];
        lowRank.push({ name, n, k, rank: info.lowRank.rank, u: info.lowRank.u, v: info.lowRank.v, bytes: info.bytes, bitsPerWeight: (8 * info.bytes) / (n * k) });
      }
      const numel = info.shape.reduce((a, b) => a * b, 1);
      const g = groupOf.get(name) ?? 'other';
      const s = groups.get(g) ?? { group: g, tensors: 0, params: 0, bytes: 0, dtypes: {} };
      s.tensors++;
      s.params += numel;
      s.bytes += info.bytes;
      s.dtypes[info.dtype] = (s.dtypes[info.dtype] ?? 0) + numel;
      dtypes[info.dtype] = (dtypes[info.dtype] ?? 0) + numel;
      groups.set(g, s);
      params += numel;
      bytes += info.bytes;
      if (opts.checkFinite) await ckpt.readF32(name);
    }
    const order = ['embedding', 'attention', 'mlp', 'norm', 'lm_head', 'other'];
    return {
      dir: path.resolve(dir),
      modelType: config.modelType,
      architecture: findArch(config.modelType).description,
      config,
      params,
      bytes,
      bitsPerWeight: (8 * bytes) / params,
      dtypes,
      groups: [...groups.values()].sort((a, b) => order.indexOf(a.group) - order.indexOf(b.group)),
      lowRank,
      metadata: ckpt.metadata,
      finiteChecked: !!opts.checkFinite,
    };
  } finally {
    await ckpt.close();
  }
}
