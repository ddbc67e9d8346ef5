/**
 * Evaluation text → token ids. The text is read, CRLF→LF normalised, and tokenized once without special
 * tokens. Tokenizing a full WikiText-2 takes tens of seconds in JS, so ids are cached on disk keyed by
 * sha256(tokenizer.json, text).
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import { cacheFilePath, readCacheFile, writeCacheFile } from '../core/disk-cache.js';
import { MissingFileError } from '../core/errors.js';
import { BUNDLED } from '../core/paths.js';
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
  const file = cacheFilePath('tokens', `${sha256}.u32`);
  const cached = useCache ? readCacheFile(file) : null;
  if (cached && cached.byteLength % 4 === 0) return { ids: new Uint32Array(cached.buffer, 0, cached.byteLength / 4), sha256, fromCache: true };
  const ids = Uint32Array.from(tok.encode(text));
  if (useCache) writeCacheFile(file, new Uint8Array(ids.buffer, ids.byteOffset, ids.byteLength));
  return { ids, sha256, fromCache: false };
}
