/**
 * The ONNX decoder graph of a Llama-family model (opset 17 + com.microsoft for MatMulNBits), with the KV
 * cache as graph inputs/outputs (the layout of Hugging Face Optimum / onnxruntime-genai decoders):
 *
 *   inputs   input_ids int64 [batch, sequence_length]
 *            attention_mask int64 [batch, total_sequence_length]      (1 = attend, 0 = padding)
 *            position_ids int64 [batch, sequence_length]
 *            past_key_values.{i}.key / .value float [batch, kv_heads, past_sequence_length, head_dim]
 *   outputs  logits float [batch, sequence_length, vocab]
 *            present.{i}.key / .value float [batch, kv_heads, total_sequence_length, head_dim]
 *
 * Standard ops only, besides MatMulNBits: RMSNorm as x / sqrt(mean(x²) + eps) · w, rotate-half RoPE with
 * cos/sin caches (the float32 tables edgeq's own forward uses) gathered by position_ids, GQA by expanding
 * each KV head to its query heads (head h reads KV head floor(h / rep), as HF repeat_kv), causal +
 * padding mask applied with Where before Softmax, SiLU-gated MLP. Quantized linears are MatMulNBits, or —
 * `quantized: 'dequantized'` (the QNN/AIMET path, whose converter quantizes float weights itself) — plain
 * MatMuls on the dequantized weights; dense linears are MatMuls on transposed [in, out] initializers
 * named `<HF weight name>.T`.
 */
import type { LlamaConfig } from '../../arch/llama-config.js';
import { GLOBAL_TENSORS, LLAMA_LINEARS, linearBiasName, linearWeightName, normName } from '../../arch/llama-tensors.js';
import { RopeTable } from '../../infer/rope.js';
import { dequantize, fallbackGrid, qtypeFor } from '../../qtypes/registry.js';
import type { GridSpec, QuantizedWeight } from '../../qtypes/types.js';
import type { GraphBuilder } from './graph-builder.js';
import { matmulNBitsProblem, packMatMulNBits } from './matmul-nbits.js';

/** Plain RTN of q's dequantized weights on `grid` (per channel when the group does not divide k). */
function requantizeFor(q: QuantizedWeight, grid: GridSpec, name: string): { q: QuantizedWeight; relError: number } {
  const w = dequantize(q);
  const rq = qtypeFor(fallbackGrid(grid, q.k)).quantizeRef(w, q.n, q.k, name);
  const w2 = dequantize(rq);
  let num = 0;
  let den = 0;
  for (let i = 0; i < w.length; i++) {
    num += (w2[i] - w[i]) ** 2;
    den += w[i] * w[i];
  }
  return { q: rq, relError: den > 0 ? Math.sqrt(num / den) : 0 };
}

export interface OnnxWeightProvider {
  readF32(name: string): Promise<Float32Array>;
  /** The quantized form of a linear weight, or null when it is stored dense. */
  readQuantized(name: string): Promise<QuantizedWeight | null>;
}

export interface LlamaGraphOptions {
  /** How quantized linears are written (default 'matmulnbits'). */
  quantized?: 'matmulnbits' | 'dequantized';
  /** Rows of the RoPE cos/sin caches = the longest sequence the graph accepts (default max_position_embeddings). */
  maxPositions?: number;
  /**
   * Grid to re-quantize (plain min/max RTN of the dequantized weights) quantized linears MatMulNBits cannot
   * hold (2/3-bit, odd group sizes); without it they are refused. The error this adds is reported per linear.
   */
  requantize?: GridSpec;
  onTensor?: (name: string) => void;
}

/** One linear of the exported graph. */
export interface OnnxLinearInfo {
  /** HF weight name, e.g. model.layers.0.mlp.up_proj.weight. */
  weight: string;
  kind: 'matmulnbits' | 'matmul';
  /** Whether the source checkpoint holds this weight quantized. */
  quantized: boolean;
  /** The initializer holding the weight: the packed B (MatMulNBits) or the [in, out] float matrix. */
  initializer: string;
  /** Its input and output activation tensors. */
  input: string;
  output: string;
  n: number;
  k: number;
  blockSize?: number;
  /** Act-order weights: columns permuted to contiguous groups (activation gathered) or the g_idx input. */
  actOrder?: 'permuted' | 'g_idx';
  /** Set when the weight was re-quantized to fit MatMulNBits: its types and ‖Ŵ_new − Ŵ_old‖ / ‖Ŵ_old‖. */
  requantized?: { from: string; to: string; relError: number };
}

export interface LlamaGraphInfo {
  linears: OnnxLinearInfo[];
  /**
   * The tensors that correspond to points of edgeq's forward (where activation statistics are taken):
   * `embed`, `layers.{i}.{qkv|o|gate_up|down|residual}` (inputs of the linear groups, the block output),
   * `final_norm`, `logits`.
   */
  taps: Record<string, string>;
}

export const INPUT_IDS = 'input_ids';
export const ATTENTION_MASK = 'attention_mask';
export const POSITION_IDS = 'position_ids';
export const pastKeyName = (l: number): string => `past_key_values.${l}.key`;
export const pastValueName = (l: number): string => `past_key_values.${l}.value`;
export const presentKeyName = (l: number): string => `present.${l}.key`;
export const presentValueName = (l: number): string => `present.${l}.value`;
export const LOGITS = 'logits';
/** Initializer name of a dense (MatMul) weight: the HF weight transposed to [in, out]. */
export const denseWeightName = (hfWeight: string): string => `${hfWeight}.T`;

function transpose(w: Float32Array, n: number, k: number): Float32Array {
  const t = new Float32Array(k * n);
  for (let r = 0; r < n; r++) for (let c = 0; c < k; c++) t[c * n + r] = w[r * k + c];
  return t;
}

export async function buildLlamaGraph(g: GraphBuilder, c: LlamaConfig, src: OnnxWeightProvider, opts: LlamaGraphOptions = {}): Promise<LlamaGraphInfo> {
  const mode = opts.quantized ?? 'matmulnbits';
  const maxPos = opts.maxPositions ?? c.maxPositionEmbeddings;
  const { hiddenSize: d, numHeads: H, numKvHeads: KV, headDim: hd, vocabSize: V } = c;
  const rep = H / KV;
  const info: LlamaGraphInfo = { linears: [], taps: {} };
  const read = async (name: string): Promise<Float32Array> => {
    opts.onTensor?.(name);
    return src.readF32(name);
  };

  // ---- inputs
  const ids = g.input(INPUT_IDS, 'INT64', ['batch', 'sequence_length']);
  const mask = g.input(ATTENTION_MASK, 'INT64', ['batch', 'total_sequence_length']);
  const pos = g.input(POSITION_IDS, 'INT64', ['batch', 'sequence_length']);
  for (let l = 0; l < c.numLayers; l++) {
    g.input(pastKeyName(l), 'FLOAT', ['batch', KV, 'past_sequence_length', hd]);
    g.input(pastValueName(l), 'FLOAT', ['batch', KV, 'past_sequence_length', hd]);
  }

  // ---- attention mask [batch, 1, seq, total]: key j visible to query i iff j <= past + i and mask[j] = 1
  const pastLen = g.op('Shape', '/mask/past_len', [pastKeyName(0)], { start: 2, end: 3 });
  const seqLen = g.op('Shape', '/mask/seq_len', [ids], { start: 1, end: 2 });
  const totalLen = g.op('Add', '/mask/total_len', [pastLen, seqLen]);
  const scalar = (x: string, name: string) => g.op('Squeeze', name, [x, g.constI64([0])]);
  const pastS = scalar(pastLen, '/mask/past_scalar');
  const totalS = scalar(totalLen, '/mask/total_scalar');
  const one = g.constI64([1], true);
  const kPos = g.op('Range', '/mask/key_positions', [g.constI64([0], true), totalS, one]);
  const qPos = g.op('Range', '/mask/query_positions', [pastS, totalS, one]);
  const causal = g.op('LessOrEqual', '/mask/causal', [
    g.op('Unsqueeze', '/mask/key_row', [kPos, g.constI64([0])]),
    g.op('Unsqueeze', '/mask/query_col', [qPos, g.constI64([1])]),
  ]);
  const padding = g.op('Unsqueeze', '/mask/padding', [g.op('Cast', '/mask/padding_bool', [mask], { to: 9 }), g.constI64([1, 2])]);
  const visible = g.op('And', '/mask/visible', [causal, padding]);
  const lowest = g.constF32(-3.4028234663852886e38);

  // ---- RoPE caches, gathered by position: [batch, 1, seq, hd/2]
  const rope = RopeTable.forConfig(c, maxPos);
  const cosCache = await g.initializer('rope.cos_cache', 'FLOAT', [maxPos, hd / 2], rope.cos);
  const sinCache = await g.initializer('rope.sin_cache', 'FLOAT', [maxPos, hd / 2], rope.sin);
  const cos = g.op('Unsqueeze', '/rope/cos', [g.op('Gather', '/rope/cos_gather', [cosCache, pos]), g.constI64([1])]);
  const sin = g.op('Unsqueeze', '/rope/sin', [g.op('Gather', '/rope/sin_gather', [sinCache, pos]), g.constI64([1])]);
  const applyRope = (x: string, p: string): string => {
    const [x1, x2] = g.node('Split', `${p}/Split`, [x], { attrs: { axis: -1 }, outputs: 2 });
    const r1 = g.op('Sub', `${p}/r1`, [g.op('Mul', `${p}/x1cos`, [x1, cos]), g.op('Mul', `${p}/x2sin`, [x2, sin])]);
    const r2 = g.op('Add', `${p}/r2`, [g.op('Mul', `${p}/x2cos`, [x2, cos]), g.op('Mul', `${p}/x1sin`, [x1, sin])]);
    return g.op('Concat', `${p}/Concat`, [r1, r2], { axis: -1 });
  };

  const rmsNorm = async (x: string, weight: string, p: string): Promise<string> => {
    const w = await g.initializer(weight, 'FLOAT', [d], await read(weight));
    const ms = g.op('ReduceMean', `${p}/mean_square`, [g.op('Mul', `${p}/square`, [x, x])], { axes: [-1], keepdims: 1 });
    const rms = g.op('Sqrt', `${p}/rms`, [g.op('Add', `${p}/add_eps`, [ms, g.constF32(c.rmsNormEps)])]);
    return g.op('Mul', `${p}/scale`, [g.op('Div', `${p}/normalize`, [x, rms]), w]);
  };

  const linear = async (weight: string, x: string, n: number, k: number, bias: string | null, p: string): Promise<string> => {
    opts.onTensor?.(weight);
    let q = await src.readQuantized(weight);
    let requantized: OnnxLinearInfo['requantized'];
    if (q && mode === 'matmulnbits' && opts.requantize && matmulNBitsProblem(q)) {
      const from = q.qtype;
      const r = requantizeFor(q, opts.requantize, weight);
      q = r.q;
      requantized = { from, to: q.qtype, relError: r.relError };
    }
    let y: string;
    if (q && mode === 'matmulnbits') {
      const m = packMatMulNBits(q, weight);
      const B = await g.initializer(`${weight}.B`, 'UINT8', [n, m.kBlocks, m.blobSize], m.b);
      const scales = await g.initializer(`${weight}.scales`, 'FLOAT', [n, m.kBlocks], m.scales);
      const a = m.inputPerm ? g.op('Gather', `${p}/act_order_gather`, [x, await g.initializer(`${weight}.input_perm`, 'INT32', [k], m.inputPerm)], { axis: -1 }) : x;
      const inputs = [a, B, scales];
      if (m.zeroPoints || m.gIdx) inputs.push(m.zeroPoints ? await g.initializer(`${weight}.zero_points`, m.zeroPoints.dtype, m.zeroPoints.dims, m.zeroPoints.data) : '');
      if (m.gIdx) inputs.push(await g.initializer(`${weight}.g_idx`, 'INT32', [k], m.gIdx));
      y = g.op('MatMulNBits', `${p}/MatMulNBits`, inputs, { K: k, N: n, bits: m.bits, block_size: m.blockSize }, 'com.microsoft');
      info.linears.push({ weight, kind: 'matmulnbits', quantized: true, initializer: B, input: x, output: y, n, k, blockSize: m.blockSize, actOrder: m.inputPerm ? 'permuted' : m.gIdx ? 'g_idx' : undefined, requantized });
    } else {
      const w = q ? dequantize(q) : await src.readF32(weight);
      const wt = await g.initializer(denseWeightName(weight), 'FLOAT', [k, n], transpose(w, n, k));
      y = g.op('MatMul', `${p}/MatMul`, [x, wt]);
      info.linears.push({ weight, kind: 'matmul', quantized: !!q, initializer: wt, input: x, output: y, n, k });
    }
    if (bias) y = g.op('Add', `${p}/bias`, [y, await g.initializer(bias, 'FLOAT', [n], await read(bias))]);
    return y;
  };

  // ---- embeddings
  const embedW = await g.initializer(GLOBAL_TENSORS.embed, 'FLOAT', [V, d], await read(GLOBAL_TENSORS.embed));
  let x = g.op('Gather', '/model/embed_tokens/Gather', [embedW, ids]);
  info.taps.embed = x;

  const heads = (y: string, n: number, p: string): string =>
    g.op('Transpose', `${p}/to_heads`, [g.op('Reshape', `${p}/split_heads`, [y, g.constI64([0, 0, n, hd])])], { perm: [0, 2, 1, 3] });
  const repeatKv = (t: string, p: string): string => {
    if (rep === 1) return t;
    const e = g.op('Expand', `${p}/Expand`, [g.op('Unsqueeze', `${p}/Unsqueeze`, [t, g.constI64([2])]), g.constI64([1, 1, rep, 1, 1])]);
    return g.op('Reshape', `${p}/Reshape`, [e, g.constI64([0, H, -1, hd])]);
  };
  const spec = (role: string) => LLAMA_LINEARS.find((s) => s.role === role)!;
  const lin = async (l: number, role: string, x: string, p: string) => {
    const s = spec(role);
    const [n, k] = s.shape(c);
    return linear(linearWeightName(l, s), x, n, k, s.hasBias(c) ? linearBiasName(l, s) : null, `${p}/${role}`);
  };

  for (let l = 0; l < c.numLayers; l++) {
    const p = `/model/layers.${l}`;
    // attention
    const h = await rmsNorm(x, normName(l, 'input_layernorm'), `${p}/input_layernorm`);
    info.taps[`layers.${l}.qkv`] = h;
    const q = applyRope(heads(await lin(l, 'q_proj', h, `${p}/attn`), H, `${p}/attn/q`), `${p}/attn/q_rope`);
    const k = applyRope(heads(await lin(l, 'k_proj', h, `${p}/attn`), KV, `${p}/attn/k`), `${p}/attn/k_rope`);
    const v = heads(await lin(l, 'v_proj', h, `${p}/attn`), KV, `${p}/attn/v`);
    const presentK = g.node('Concat', `${p}/attn/present_key`, [pastKeyName(l), k], { attrs: { axis: 2 }, outputs: [presentKeyName(l)] })[0];
    const presentV = g.node('Concat', `${p}/attn/present_value`, [pastValueName(l), v], { attrs: { axis: 2 }, outputs: [presentValueName(l)] })[0];
    const kAll = repeatKv(presentK, `${p}/attn/repeat_key`);
    const vAll = repeatKv(presentV, `${p}/attn/repeat_value`);
    const scores = g.op('Mul', `${p}/attn/scale`, [
      g.op('MatMul', `${p}/attn/qk`, [q, g.op('Transpose', `${p}/attn/key_t`, [kAll], { perm: [0, 1, 3, 2] })]),
      g.constF32(1 / Math.sqrt(hd)),
    ]);
    const probs = g.op('Softmax', `${p}/attn/Softmax`, [g.op('Where', `${p}/attn/mask`, [visible, scores, lowest])], { axis: -1 });
    const ctx = g.op('MatMul', `${p}/attn/pv`, [probs, vAll]);
    const merged = g.op('Reshape', `${p}/attn/merge_heads`, [g.op('Transpose', `${p}/attn/from_heads`, [ctx], { perm: [0, 2, 1, 3] }), g.constI64([0, 0, H * hd])]);
    info.taps[`layers.${l}.o`] = merged;
    x = g.op('Add', `${p}/attn/residual`, [x, await lin(l, 'o_proj', merged, `${p}/attn`)]);
    // MLP
    const h2 = await rmsNorm(x, normName(l, 'post_attention_layernorm'), `${p}/post_attention_layernorm`);
    info.taps[`layers.${l}.gate_up`] = h2;
    const gate = await lin(l, 'gate_proj', h2, `${p}/mlp`);
    const up = await lin(l, 'up_proj', h2, `${p}/mlp`);
    const silu = g.op('Mul', `${p}/mlp/silu`, [gate, g.op('Sigmoid', `${p}/mlp/sigmoid`, [gate])]);
    const gated = g.op('Mul', `${p}/mlp/gated`, [silu, up]);
    info.taps[`layers.${l}.down`] = gated;
    x = g.op('Add', `${p}/mlp/residual`, [x, await lin(l, 'down_proj', gated, `${p}/mlp`)]);
    info.taps[`layers.${l}.residual`] = x;
  }

  const hFinal = await rmsNorm(x, GLOBAL_TENSORS.finalNorm, '/model/norm');
  info.taps.final_norm = hFinal;
  let logits: string;
  if (c.tieWordEmbeddings) {
    const wT = g.op('Transpose', '/lm_head/tied_weight', [embedW], { perm: [1, 0] });
    logits = g.node('MatMul', '/lm_head/MatMul', [hFinal, wT], { outputs: [LOGITS] })[0];
  } else {
    const y = await linear(GLOBAL_TENSORS.lmHead, hFinal, V, d, null, '/lm_head');
    logits = g.node('Identity', '/lm_head/logits', [y], { outputs: [LOGITS] })[0];
  }
  info.taps.logits = logits;
  g.output(LOGITS, 'FLOAT', ['batch', 'sequence_length', V]);
  for (let l = 0; l < c.numLayers; l++) {
    g.output(presentKeyName(l), 'FLOAT', ['batch', KV, 'total_sequence_length', hd]);
    g.output(presentValueName(l), 'FLOAT', ['batch', KV, 'total_sequence_length', hd]);
  }
  return info;
}
