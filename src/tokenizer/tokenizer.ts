/**
 * The model's tokenizer, from tokenizer.json (+ tokenizer_config.json) through @huggingface/tokenizers.
 * edgeq encodes text without special tokens and adds BOS itself, so the rule is in one place.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import { FormatError, MissingFileError } from '../core/errors.js';
import { readJsonFile, readOptionalJson } from '../model/model-dir.js';

export class EdgeqTokenizer {
  private constructor(
    private readonly tok: Tokenizer,
    readonly bosId: number | null,
    readonly eosIds: number[],
    /** sha256 of tokenizer.json, for caches keyed by tokenizer. */
    readonly fingerprint: string,
  ) {}

  static load(dir: string, modelBos: number | null = null, modelEos: number[] = []): EdgeqTokenizer {
    const file = path.join(dir, 'tokenizer.json');
    if (!fs.existsSync(file))
      throw new MissingFileError(
        'E_NO_TOKENIZER',
        `${dir} has no tokenizer.json`,
        'copy tokenizer.json from the original model repo (edgeq needs the fast-tokenizer JSON, not only tokenizer.model)',
      );
    const json = readJsonFile(file);
    const cfg = readOptionalJson(path.join(dir, 'tokenizer_config.json')) ?? {};
    const gen = readOptionalJson(path.join(dir, 'generation_config.json')) ?? {};
    let tok: Tokenizer;
    try {
      tok = new Tokenizer(json as object, cfg);
    } catch (e) {
      throw new FormatError('E_TOKENIZER', `cannot load tokenizer: ${(e as Error).message}`, file, 'the tokenizer.json may be corrupt or of an unsupported kind');
    }
    const bos = typeof gen.bos_token_id === 'number' ? gen.bos_token_id : modelBos;
    const eosRaw = gen.eos_token_id ?? (modelEos.length ? modelEos : null);
    const eos = Array.isArray(eosRaw) ? eosRaw.filter((x): x is number => typeof x === 'number') : typeof eosRaw === 'number' ? [eosRaw] : [];
    const fingerprint = createHash('sha256').update(fs.readFileSync(file)).digest('hex');
    return new EdgeqTokenizer(tok, bos, eos, fingerprint);
  }

  /** Token ids of text, without special tokens. */
  encode(text: string): number[] {
    return this.tok.encode(text, { add_special_tokens: false }).ids;
  }

  /** BOS + encode(text) (BOS only when the model has one). */
  encodeWithBos(text: string): number[] {
    const ids = this.encode(text);
    return this.bosId === null ? ids : [this.bosId, ...ids];
  }

  decode(ids: number[]): string {
    return this.tok.decode(ids, { skip_special_tokens: false });
  }

  /** Text of `generated` as it continues `prompt` (decoders strip a leading space from a lone continuation). */
  decodeContinuation(prompt: number[], generated: number[]): string {
    const head = this.decode(prompt);
    const all = this.decode([...prompt, ...generated]);
    return all.startsWith(head) ? all.slice(head.length) : this.decode(generated);
  }
}
