/**
 * The ladder's sensitivity pass — statistics collection only (the allocation is allocate.ts, pure).
 *
 * For every linear ℓ and rung r it estimates the loss the model gains when ℓ alone takes rung r, as
 *
 *   loss(ℓ, r) = c_ℓ · e_ℓ(r)        e_ℓ(r) = tr((W − Ŵ_r)·G·(W − Ŵ_r)ᵀ),  G = 2XᵀX/N of ℓ's inputs
 *   c_ℓ = KL_ℓ(probe) / e_ℓ(probe)
 *
 * e_ℓ(r) is ℓ's own output error on the calibration subset, exact for every rung from one Hessian.
 * c_ℓ converts it into the model's final loss: KL_ℓ(probe) is measured end to end — ℓ alone set to the
 * probe rung (by default int3 g128 or the nearest rung the target runs), the subset run from ℓ's block to
 * the logits, mean KL(FP ‖ probe) per token. So every layer is priced in the same unit (the model's
 * output KL), which a per-layer error alone is not (an error in q_proj and one in down_proj move the
 * logits very differently), at the cost of one partial forward per linear instead of one per rung; the
 * second-order view (KL ≈ ½ δᵀFδ, δ linear in ℓ's output error) is what makes the rescaling valid for
 * small errors. Summing loss over layers assumes their effects add (HAWQ's and llama.cpp's assumption).
 *
 * Held out: the subset's first ⌈n/2⌉ sequences fit what is fitted to data (the low-rank rungs' whitening), the
 * other sequences give G, the probe KL and so every price — a rung fitted to calibration tokens would
 * otherwise look far better on them than on any other text (measured: a ladder priced in-sample chose low
 * rank for most linears and landed at 170× its estimated KL).
 *
 * Ŵ_r: RTN on the rung's grid (the quantizer that runs later, GPTQ, lowers every rung's error by a
 * similar factor), or the whitened low-rank factors exactly as the pipeline stores them. The pass runs
 * on the FP model held on the backend (the only pass that needs the whole model; quantization itself
 * streams), one block's Hessians at a time.
 */
import type { LlamaConfig } from '../arch/llama-config.js';
import { LLAMA_LINEARS, linearBiasName, linearWeightName, type LinearRole } from '../arch/llama-tensors.js';
import { roundToF16 } from '../core/dtype.js';
import { UsageError } from '../core/errors.js';
import type { TensorReader } from '../formats/safetensors/types.js';
import type { TapPoint } from '../infer/llama-block.js';
import type { LlamaModel } from '../infer/llama-model.js';
import { DenseLinear, type Linear } from '../infer/linear.js';
import { rmsNorm, logSumExp } from '../infer/ops.js';
import type { MatmulBackend } from '../kernels/backend.js';
import { quadraticError, type WhitenedDecomposition } from '../lowrank/whitened-svd.js';
import { BlockRunner, CalibActivations } from '../pipeline/activations.js';
import { quantizeRtnFake } from '../pipeline/fake-quant.js';
import { LINEAR_GROUPS } from '../pipeline/plan.js';
import { decomposeLowRank, solveLowRank } from '../pipeline/lowrank-solve.js';
import { HessianAccumulator } from '../quantizers/hessian.js';
import { quantizeRtn } from '../quantizers/rtn.js';
import type { QuantizedWeight } from '../qtypes/types.js';
import { resolveTreatment, treatmentBytes, type LadderRung, type ResolvedTreatment } from './rungs.js';

export interface RungMeasure {
  id: string;
  treatment: ResolvedTreatment;
  /** Exact stored bytes of the weight at this rung (on the device, for a target that re-encodes it). */
  bytes: number;
  /** ‖W − Ŵ‖² of the weights this rung stores (on the device, for a re-encoding target). */
  weightError: number;
  /** e(r): output error on the calibration subset (tr(ΔW·G·ΔWᵀ), G = 2XᵀX/N). */
  outputError: number;
  /** Estimated increase of the model's mean KL vs FP: c · e(r). */
  loss: number;
}

export interface LinearSensitivity {
  name: string;
  layer: number;
  role: LinearRole;
  n: number;
  k: number;
  probe: string;
  /** Measured end-to-end mean KL with this linear alone at the probe rung. */
  probeKl: number;
  coefficient: number;
  /** The low-rank rungs' own probe (the first low-rank rung), when the ladder has any. */
  lowRankProbe?: string;
  lowRankProbeKl?: number;
  lowRankCoefficient?: number;
  rungs: RungMeasure[];
}

export interface SensitivityRequest {
  config: LlamaConfig;
  /** The FP model (dense linears) on `backend`. */
  model: LlamaModel;
  /** The source checkpoint (FP weights). */
  reader: TensorReader;
  backend: MatmulBackend;
  rungs: readonly LadderRung[];
  /** Calibration token ids (n·T), run as n causal sequences of T tokens. */
  ids: Int32Array | Uint32Array;
  n: number;
  T: number;
  /** Rung id measured end to end (default: int3-g128 or the first rung it lowered into, else the last quantized rung). */
  probe?: string;
  /**
   * How the target stores a quantized weight when not as is (e.g. the NPU's LPBQ re-encoding): the rung is
   * priced on these values and bytes instead of the checkpoint's.
   */
  store?: (q: QuantizedWeight, name: string) => { values: Float32Array; bytes: number };
  /** Whether the target runs a rung resolved for a weight's shape (default: all). */
  accepts?: (t: ResolvedTreatment) => boolean;
  onProgress?: (done: number, total: number, name: string) => void;
}


/** The probe rung: `want`, else int3-g128 (or the rung it lowered into), else the last quantized rung; null when there is none (a low-rank-only ladder). */
export function probeRung(rungs: readonly LadderRung[], want?: string): LadderRung | null {
  const id = want ?? 'int3-g128';
  const hit = rungs.find((r) => r.id === id || r.from.includes(id));
  if (hit) return hit;
  if (want) throw new UsageError('E_LADDER_PROBE', `no rung '${want}' on this target`, `rungs: ${rungs.map((r) => r.id).join(', ')}`);
  const quantized = rungs.filter((r) => r.treatment.kind === 'quantized');
  return quantized[quantized.length - 1] ?? null;
}

/**
 * Ŵ of one rung (what the sensitivity pass prices). Low-rank rungs of one weight share one decomposition
 * per whitening (`cache`), cut at each rung's rank.
 */
export function rungWeight(t: ResolvedTreatment, w: Float32Array, n: number, k: number, xtx: Float64Array, backend: MatmulBackend, cache = new Map<string, WhitenedDecomposition>(), maxRank = Math.min(n, k)): Float32Array {
  if (t.kind === 'dense') return roundToF16(w);
  if (t.kind === 'quantized') return quantizeRtnFake(w, n, k, t.grid);
  let d = cache.get(t.whitening);
  if (!d) cache.set(t.whitening, (d = decomposeLowRank(w, n, k, t.whitening, maxRank, { xtx }, { backend })));
  return solveLowRank(w, n, k, t, { xtx }, { backend, decomposition: d }).wq;
}

/** Log-probabilities (rows, V) of the final hidden states x (rows, d). */
function logProbs(model: LlamaModel, x: Float32Array, rows: number): Float32Array {
  const c = model.config;
  const h = rmsNorm(x, model.weights.finalNorm, rows, c.hiddenSize, c.rmsNormEps, new Float32Array(rows * c.hiddenSize));
  const logits = model.weights.lmHead.forward(h, rows);
  const V = c.vocabSize;
  for (let r = 0; r < rows; r++) {
    const lse = logSumExp(logits, r * V, V);
    for (let i = 0; i < V; i++) logits[r * V + i] -= lse;
  }
  return logits;
}

/** Mean KL(ref ‖ model) per token of the activations after the last block. */
function meanKl(model: LlamaModel, acts: CalibActivations, ref: Float32Array): number {
  const V = model.config.vocabSize;
  let total = 0;
  for (let i = 0; i < acts.n; i++) {
    const lp = logProbs(model, acts.seq(i), acts.T);
    const off = i * acts.T * V;
    for (let t = 0; t < acts.T; t++) {
      let kl = 0;
      for (let v = 0; v < V; v++) {
        const a = ref[off + t * V + v]!;
        kl += Math.exp(a) * (a - lp[t * V + v]!);
      }
      total += Math.max(0, kl);
    }
  }
  return total / (acts.n * acts.T);
}

export async function measureSensitivity(req: SensitivityRequest): Promise<LinearSensitivity[]> {
  const { config: c, model, backend, n, T } = req;
  const d = c.hiddenSize;
  if (req.ids.length < n * T) throw new UsageError('E_LADDER_CALIB', `need ${n}×${T} calibration tokens, got ${req.ids.length}`);
  const probe = probeRung(req.rungs, req.probe);
  const runner = new BlockRunner(c, backend, T);
  const blocks = model.weights.blocks;
  const heldOut = n >= 2;
  const nFit = heldOut ? Math.ceil(n / 2) : n;
  const evalFrom = heldOut ? nFit : 0;
  // FP activations at the input of block 0; the evaluation sequences' FP log-probabilities, which every probe is compared with
  const acts = new CalibActivations(n, T, d, model.embed(req.ids.subarray(0, n * T)));
  const evalActs = (from: CalibActivations): CalibActivations => new CalibActivations(n - evalFrom, T, d, from.data.slice(evalFrom * T * d));
  const ref = new Float32Array((n - evalFrom) * T * c.vocabSize);
  {
    const x = evalActs(acts);
    for (const b of blocks) runner.run(b, x, { propagate: true });
    for (let i = 0; i < x.n; i++) ref.set(logProbs(model, x.seq(i), T), i * T * c.vocabSize);
  }
  const out: LinearSensitivity[] = [];
  const total = c.numLayers * LLAMA_LINEARS.length;
  for (let l = 0; l < c.numLayers; l++) {
    for (const g of LINEAR_GROUPS) {
      const k = LLAMA_LINEARS.find((s) => s.role === g.roles[0])!.shape(c)[1];
      // held out: the first nFit sequences fit what is fitted to data (low-rank whitening), the others price
      // every rung (output error and KL), so a rung is never priced on the tokens it was fitted to
      const fit = new HessianAccumulator(k, { backend });
      const acc = heldOut ? new HessianAccumulator(k, { backend }) : fit;
      let seq = 0;
      runner.run(blocks[l]!, acts, { propagate: false, stopAfter: g.point, tap: (p, x, rows) => p === g.point && (seq++ < nFit ? fit : acc).addBatch(x, rows) });
      for (const role of g.roles) {
        const spec = LLAMA_LINEARS.find((s) => s.role === role)!;
        const [nOut] = spec.shape(c);
        const name = linearWeightName(l, spec);
        const w = await req.reader.readF32(name, { checkFinite: true });
        // the rungs this weight can take on the target (a group size k does not divide falls back to per
        // channel, which the target may not run: then that rung is not offered for this weight)
        const avail = req.rungs.map((r) => ({ r, t: resolveTreatment(r.treatment, nOut, k) })).filter((a) => req.accepts?.(a.t) ?? true);
        const maxRank = Math.max(1, ...avail.map((a) => (a.t.kind === 'lowrank' ? a.t.rank : 0)));
        const quantized = avail.filter((a) => a.t.kind === 'quantized');
        const mainProbe = avail.find((a) => a.r === probe) ?? quantized[quantized.length - 1] ?? null;
        const lrProbe = avail.find((a) => a.t.kind === 'lowrank') ?? null;
        const decompositions = new Map<string, WhitenedDecomposition>();
        const rungs: RungMeasure[] = [];
        const probeW = new Map<string, Float32Array>();
        for (const a of avail) {
          let wq: Float32Array;
          let bytes = treatmentBytes(a.t, nOut, k, name);
          if (a.t.kind === 'quantized' && req.store) {
            const s = req.store(quantizeRtn(w, nOut, k, a.t.grid), name);
            wq = s.values;
            bytes = s.bytes;
          } else wq = rungWeight(a.t, w, nOut, k, fit.H, backend, decompositions, maxRank);
          const diff = new Float32Array(w.length);
          let weightError = 0;
          for (let i = 0; i < w.length; i++) {
            diff[i] = w[i]! - wq[i]!;
            weightError += diff[i]! * diff[i]!;
          }
          rungs.push({ id: a.r.id, treatment: a.t, bytes, weightError, outputError: quadraticError(diff, nOut, k, acc.H), loss: 0 });
          if (a === mainProbe || a === lrProbe) probeW.set(a.r.id, wq);
        }
        if (rungs.length === 0) throw new UsageError('E_LADDER_RUNGS', `no rung of the ladder can store ${name} (${nOut}×${k}) on this target`, 'use --target wasm, or another target');
        // end to end: this linear alone at each probe rung, the subset from block l to the logits
        const bias = spec.hasBias(c) ? await req.reader.readF32(linearBiasName(l, spec)) : null;
        const probeAt = (id: string): { kl: number; c: number } => {
          const original: Linear = blocks[l]!.linears[role];
          const swapped = new DenseLinear(backend, probeW.get(id)!, nOut, k, bias);
          let kl: number;
          try {
            blocks[l]!.linears[role] = swapped;
            const x = evalActs(acts);
            for (let j = l; j < c.numLayers; j++) runner.run(blocks[j]!, x, { propagate: true });
            kl = meanKl(model, x, ref);
          } finally {
            blocks[l]!.linears[role] = original;
            swapped.free();
          }
          const err = rungs.find((r) => r.id === id)!.outputError;
          return { kl, c: err > 0 ? kl / err : 0 };
        };
        const main = mainProbe ? probeAt(mainProbe.r.id) : { kl: 0, c: 0 };
        const lowrank = lrProbe ? probeAt(lrProbe.r.id) : main;
        for (const r of rungs) r.loss = (r.treatment.kind === 'lowrank' ? lowrank.c : main.c) * r.outputError;
        out.push({ name, layer: l, role, n: nOut, k, probe: mainProbe?.r.id ?? '', probeKl: main.kl, coefficient: main.c, ...(lrProbe ? { lowRankProbe: lrProbe.r.id, lowRankProbeKl: lowrank.kl, lowRankCoefficient: lowrank.c } : {}), rungs });
        req.onProgress?.(out.length, total, name);
        await new Promise((res) => setImmediate(res));
      }
    }
    runner.run(blocks[l]!, acts, { propagate: true });
  }
  return out;
}
