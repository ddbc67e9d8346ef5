/**
 * The `tokenizer.ggml.*` metadata of a GGUF file from a Hugging Face tokenizer.json:
 *
 *   - SentencePiece-style vocabularies (BPE with byte_fallback and a ▁ normalizer / Metaspace, or Unigram)
 *     → `tokenizer.ggml.model = "llama"`. llama.cpp's SPM tokenizer merges the adjacent pair whose
 *     concatenation has the highest score; scores are −(rank of the first HF merge producing the token),
 *     so its merge order is HF's (Unigram: the model's own log-probabilities).
 *   - Byte-level BPE (GPT-2 style) → `"gpt2"` with `tokenizer.ggml.merges` and `tokenizer.ggml.pre`, the
 *     pre-tokenizer named from its split regex (a small table of the ones llama.cpp knows).
 *
 * token_type: 1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte.
 */
import { FormatError, UnsupportedError } from '../../core/errors.js';
import { gv, type GgufValue } from './metadata-values.js';

type Json = Record<string, unknown>;

const TOKEN_TYPE = { normal: 1, unknown: 2, control: 3, userDefined: 4, unused: 5, byte: 6 } as const;

/** Known byte-level pre-tokenizer regexes → llama.cpp's `tokenizer.ggml.pre` names. */
const PRE_TOKENIZERS: { name: string; marker: string }[] = [
  { name: 'llama-bpe', marker: "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}" },
  { name: 'qwen2', marker: "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}|" },
  { name: 'gpt2', marker: "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+" },
];

export interface TokenizerInputs {
  tokenizer: Json;
  tokenizerConfig: Json | null;
  /** config.json's vocab_size: the embedding rows (the token list is padded to it). */
  vocabSize: number;
  bosId: number | null;
  eosId: number | null;
}

function isSentencePieceStyle(t: Json, model: Json): boolean {
  if (model.type === 'Unigram') return true;
  if (model.type !== 'BPE' || model.byte_fallback !== true) return false;
  const text = JSON.stringify([t.normalizer ?? null, t.pre_tokenizer ?? null]);
  return text.includes('▁');
}

function mergePairs(model: Json): [string, string][] {
  const raw = Array.isArray(model.merges) ? (model.merges as unknown[]) : [];
  return raw.map((m, i) => {
    if (typeof m === 'string') {
      const sp = m.indexOf(' ', 1);
      if (sp < 0) throw new FormatError('E_TOKENIZER', `merge ${i} '${m}' is not 'a b'`, 'tokenizer.json');
      return [m.slice(0, sp), m.slice(sp + 1)];
    }
    if (Array.isArray(m) && m.length === 2 && typeof m[0] === 'string' && typeof m[1] === 'string') return [m[0], m[1]];
    throw new FormatError('E_TOKENIZER', `merge ${i} is neither 'a b' nor ["a", "b"]`, 'tokenizer.json');
  });
}

export interface GgufTokenizer {
  model: 'llama' | 'gpt2';
  tokens: string[];
  scores: Float32Array;
  types: Int32Array;
  merges: string[] | null;
  pre: string | null;
  /** Warnings to show the user (e.g. an unknown pre-tokenizer). */
  warnings: string[];
}

export function buildGgufTokenizer(inp: TokenizerInputs): GgufTokenizer {
  const t = inp.tokenizer;
  const model = (t.model ?? {}) as Json;
  const warnings: string[] = [];
  const spm = isSentencePieceStyle(t, model);
  const byteLevel = model.type === 'BPE' && JSON.stringify(t.pre_tokenizer ?? null).includes('ByteLevel');
  if (!spm && !byteLevel)
    throw new UnsupportedError(
      'E_TOKENIZER_KIND',
      `tokenizer.json model '${String(model.type)}' is neither SentencePiece-style nor byte-level BPE`,
      'GGUF export supports Llama (SentencePiece) and GPT-2-style byte-level BPE tokenizers',
    );

  // id → token text, from the model vocabulary then the added tokens
  const byId = new Map<number, string>();
  const unigramScores = new Map<number, number>();
  if (model.type === 'Unigram') {
    (model.vocab as [string, number][]).forEach(([piece, score], id) => {
      byId.set(id, piece);
      unigramScores.set(id, score);
    });
  } else {
    for (const [tok, id] of Object.entries((model.vocab ?? {}) as Record<string, number>)) byId.set(id, tok);
  }
  const added = new Map<number, { special: boolean }>();
  for (const a of (t.added_tokens ?? []) as Json[]) {
    const id = a.id as number;
    byId.set(id, String(a.content));
    added.set(id, { special: a.special === true });
  }
  const maxId = Math.max(-1, ...byId.keys());
  const n = Math.max(inp.vocabSize, maxId + 1);
  if (n > inp.vocabSize) warnings.push(`tokenizer has ${maxId + 1} tokens but the model's vocab_size is ${inp.vocabSize}`);

  const tokens: string[] = new Array(n);
  const scores = new Float32Array(n);
  const types = new Int32Array(n);
  const firstMerge = new Map<string, number>();
  const merges = mergePairs(model);
  merges.forEach(([a, b], rank) => {
    if (!firstMerge.has(a + b)) firstMerge.set(a + b, rank);
  });
  const unkToken = typeof model.unk_token === 'string' ? model.unk_token : null;
  for (let id = 0; id < n; id++) {
    const tok = byId.get(id);
    if (tok === undefined) {
      tokens[id] = `[PAD${id}]`;
      types[id] = TOKEN_TYPE.unused;
      scores[id] = -1e9;
      continue;
    }
    tokens[id] = tok;
    const a = added.get(id);
    if (tok === unkToken) types[id] = TOKEN_TYPE.unknown;
    else if (a) types[id] = a.special ? TOKEN_TYPE.control : TOKEN_TYPE.userDefined;
    else if (spm && /^<0x[0-9A-Fa-f]{2}>$/.test(tok)) types[id] = TOKEN_TYPE.byte;
    else types[id] = TOKEN_TYPE.normal;
    if (model.type === 'Unigram') scores[id] = unigramScores.get(id) ?? 0;
    else if (spm) scores[id] = firstMerge.has(tok) ? -firstMerge.get(tok)! : 0;
  }

  let pre: string | null = null;
  if (!spm) {
    const text = JSON.stringify(t.pre_tokenizer ?? null);
    pre = PRE_TOKENIZERS.find((p) => text.includes(JSON.stringify(p.marker).slice(1, -1)))?.name ?? null;
    if (!pre) {
      pre = 'default';
      warnings.push("unknown byte-level pre-tokenizer: tokenizer.ggml.pre = 'default' (llama.cpp may split text differently)");
    }
  }
  return { model: spm ? 'llama' : 'gpt2', tokens, scores, types, merges: spm ? null : merges.map(([a, b]) => `${a} ${b}`), pre, warnings };
}

/** The tokenizer.ggml.* KV pairs. */
export function tokenizerMetadata(inp: TokenizerInputs): { kv: [string, GgufValue][]; warnings: string[] } {
  const g = buildGgufTokenizer(inp);
  const kv: [string, GgufValue][] = [
    ['tokenizer.ggml.model', gv.str(g.model)],
    ...(g.pre ? ([['tokenizer.ggml.pre', gv.str(g.pre)]] as [string, GgufValue][]) : []),
    ['tokenizer.ggml.tokens', gv.strings(g.tokens)],
    ['tokenizer.ggml.scores', gv.f32s(g.scores)],
    ['tokenizer.ggml.token_type', gv.i32s(g.types)],
  ];
  if (g.merges) kv.push(['tokenizer.ggml.merges', gv.strings(g.merges)]);
  const cfg = inp.tokenizerConfig ?? {};
  const idOf = (v: unknown): number | null => {
    const content = typeof v === 'string' ? v : typeof v === 'object' && v !== null ? (v as Json).content : null;
    const i = typeof content === 'string' ? g.tokens.indexOf(content) : -1;
    return i >= 0 ? i : null;
  };
  const bos = inp.bosId ?? idOf(cfg.bos_token);
  const eos = inp.eosId ?? idOf(cfg.eos_token);
  const unk = idOf(cfg.unk_token) ?? (g.types.indexOf(TOKEN_TYPE.unknown) >= 0 ? g.types.indexOf(TOKEN_TYPE.unknown) : null);
  if (bos !== null) kv.push(['tokenizer.ggml.bos_token_id', gv.u32(bos)]);
  if (eos !== null) kv.push(['tokenizer.ggml.eos_token_id', gv.u32(eos)]);
  if (unk !== null) kv.push(['tokenizer.ggml.unknown_token_id', gv.u32(unk)]);
  const pad = idOf(cfg.pad_token);
  if (pad !== null) kv.push(['tokenizer.ggml.padding_token_id', gv.u32(pad)]);
  const addBos = typeof cfg.add_bos_token === 'boolean' ? cfg.add_bos_token : g.model === 'llama';
  kv.push(['tokenizer.ggml.add_bos_token', gv.bool(addBos)]);
  if (typeof cfg.add_eos_token === 'boolean') kv.push(['tokenizer.ggml.add_eos_token', gv.bool(cfg.add_eos_token)]);
  if (typeof cfg.chat_template === 'string') kv.push(['tokenizer.chat_template', gv.str(cfg.chat_template)]);
  return { kv, warnings: g.warnings };
}
