/**
 * Evaluation text → token ids. The text is read, CRLF→LF normalised, and tokenized once without special
 * tokens. Tokenizing a full WikiText-2 takes tens of seconds in JS, so ids are cached on disk keyed by
 * sha256(tokenizer.json, text).
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { writeFileAtomic } from '../core/atomic-write.js';
import { MissingFileError } from '../core/errors.js';
import { BUNDLED, edgeqCacheDir } from '../core/paths.js';
import type { EdgeqTokenizer } from '../tokenizer/tokenizer.js';

export function resolveDatasetPath(dataset: string): string {
  const bundled = BUNDLED.datasets[dataset];
  if (bundled) return bundled;
  if (!fs.existsSync(dataset))
    throw new MissingFileError(
      'E_NO_DATASET',
      `dataset '${dataset}' is neither a bundled name nor an existing file`,
      `use one of: ${Object.keys(BUNDLED.datasets).join(', ')}, or a path to a UTF-8 text file`,
    );
  return dataset;
}

export function readEvalText(file: string): string {
  return fs.readFileSync(file, 'utf8').replace(/\r\n/g, '\n');
}

export interface TokenizedText {
  ids: Uint32Array;
  sha256: string;
  fromCache: boolean;
}

export function tokenizeText(tok: EdgeqTokenizer, text: string, useCache = true): TokenizedText {
  const sha256 = createHash('sha256').update(tok.fingerprint).update('\0').update(text).digest('hex');
  const file = path.join(edgeqCacheDir(), 'tokens', `${sha256}.u32`);
  if (useCache && fs.existsSync(file)) {
    const buf = fs.readFileSync(file);
    if (buf.byteLength % 4 === 0) return { ids: new Uint32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4).slice(), sha256, fromCache: true };
  }
  const ids = Uint32Array.from(tok.encode(text));
  if (useCache) {
    try {
      fs.mkdirSync(path.dirname(file), { recursive: true });
      writeFileAtomic(file, new Uint8Array(ids.buffer, ids.byteOffset, ids.byteLength));
    } catch {
      // A read-only cache only costs time.
    }
  }
  return { ids, sha256, fromCache: false };
}
