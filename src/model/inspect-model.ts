/** What `edgeq inspect` reports: architecture, parameter count, dtypes and bytes per tensor group. */
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
    for (const [name, info] of ckpt.tensors) {
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
      metadata: ckpt.metadata,
      finiteChecked: !!opts.checkFinite,
    };
  } finally {
    await ckpt.close();
  }
}
