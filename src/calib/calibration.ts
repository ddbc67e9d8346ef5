/**
 * Calibration text for GPTQ/AWQ: a set bundled with edgeq (offline, `calibration/`) or the user's own
 * file. Never the evaluation text: WikiText-2 test is what `edgeq eval` scores, so calibrating on it would
 * flatter the quantized model.
 *
 *   spec                 kind       text
 *   'brown' (default)    bundled    calibration/brown-sample.txt (see calibration/SOURCES.md)
 *   path/to/file.jsonl   jsonl      one JSON object per line with a string `text`; records joined by a
 *                                   blank line ("\n\n"); blank lines skipped
 *   any other path       text       the file as UTF-8
 *
 * All text is decoded as strict UTF-8 (a leading BOM dropped) and CRLF→LF normalised, like eval text.
 * `sha256` is of the resulting text (UTF-8), so it identifies exactly what gets tokenized.
 * Token sampling lives in sample.ts and is re-exported here.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { FormatError, MissingFileError } from '../core/errors.js';
import { PACKAGE_ROOT } from '../core/paths.js';

export { sampleCalibration } from './sample.js';
export type { CalibrationSample, SampleOptions } from './sample.js';

export type CalibrationKind = 'bundled' | 'text' | 'jsonl';

export interface CalibrationText {
  /** The bundled name, or the file's base name. */
  name: string;
  text: string;
  /** sha256 (hex) of `text` as UTF-8. */
  sha256: string;
  kind: CalibrationKind;
}

export const DEFAULT_CALIBRATION = 'brown';

/** Bundled calibration sets by name (files inside the installed package; no network, ever). */
export const BUNDLED_CALIBRATION: Readonly<Record<string, string>> = {
  brown: path.join(PACKAGE_ROOT, 'calibration/brown-sample.txt'),
};

/** Less text than this (after trimming) cannot make a meaningful calibration set. */
export const MIN_CALIBRATION_CHARS = 100;

const SPEC_HINT = `use a bundled set (${Object.keys(BUNDLED_CALIBRATION).join(', ')}), a UTF-8 text file, or a .jsonl file with one {"text": "..."} object per line`;

export function loadCalibrationText(spec: string = DEFAULT_CALIBRATION): CalibrationText {
  const bundled = Object.hasOwn(BUNDLED_CALIBRATION, spec) ? BUNDLED_CALIBRATION[spec] : undefined;
  const file = bundled ?? spec;
  assertReadableFile(file, bundled !== undefined);
  const kind: CalibrationKind = bundled ? 'bundled' : path.extname(file).toLowerCase() === '.jsonl' ? 'jsonl' : 'text';
  const raw = decodeUtf8(fs.readFileSync(file), file);
  const text = kind === 'jsonl' ? parseJsonl(raw, file) : raw;
  const trimmed = text.trim().length;
  if (trimmed === 0)
    throw new FormatError('E_CALIB_EMPTY', kind === 'jsonl' ? 'no calibration records (the file has no non-blank lines)' : 'the calibration file is empty', file, SPEC_HINT);
  if (trimmed < MIN_CALIBRATION_CHARS)
    throw new FormatError(
      'E_CALIB_TOO_SHORT',
      `only ${trimmed} characters of calibration text (at least ${MIN_CALIBRATION_CHARS} needed)`,
      file,
      'calibration needs enough text for samples × seq-len tokens (hundreds of KB for real models); use a larger file or the bundled set (--calib brown)',
    );
  const sha256 = createHash('sha256').update(text, 'utf8').digest('hex');
  return { name: bundled ? spec : path.basename(file), text, sha256, kind };
}

function assertReadableFile(file: string, bundled: boolean): void {
  let stat: fs.Stats;
  try {
    stat = fs.statSync(file);
  } catch {
    if (bundled) throw new MissingFileError('E_NO_CALIBRATION', `the bundled calibration file ${file} is missing`, 'the edgeq installation is incomplete; reinstall it');
    throw new MissingFileError('E_NO_CALIBRATION', `calibration set '${file}' is neither a bundled name nor an existing file`, SPEC_HINT);
  }
  if (!stat.isFile()) throw new MissingFileError('E_NO_CALIBRATION', `calibration set '${file}' is not a regular file`, SPEC_HINT);
}

function decodeUtf8(bytes: Uint8Array, file: string): string {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false }).decode(bytes);
  } catch {
    throw new FormatError('E_CALIB_ENCODING', 'not valid UTF-8 text', file, 're-save the calibration file as UTF-8 (binary files cannot be used for calibration)');
  }
  return text.replace(/\r\n/g, '\n');
}

/** JSON Lines: one object per non-blank line with a string `text`; errors name the 1-based line. */
function parseJsonl(raw: string, file: string): string {
  const texts: string[] = [];
  const lines = raw.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    if (line.trim() === '') continue;
    const where = `line ${i + 1}`;
    let rec: unknown;
    try {
      rec = JSON.parse(line);
    } catch (e) {
      throw new FormatError('E_CALIB_JSONL', `${where}: not valid JSON (${(e as Error).message})`, file, 'each line of a .jsonl file must be one complete JSON object, e.g. {"text": "..."}; blank lines are skipped');
    }
    if (typeof rec !== 'object' || rec === null || Array.isArray(rec))
      throw new FormatError('E_CALIB_JSONL', `${where}: expected a JSON object, got ${Array.isArray(rec) ? 'an array' : rec === null ? 'null' : typeof rec}`, file, 'each line must be an object with a string "text" field, e.g. {"text": "..."}');
    const t = (rec as Record<string, unknown>).text;
    if (typeof t !== 'string')
      throw new FormatError(
        'E_CALIB_JSONL',
        `${where}: ${t === undefined ? 'has no "text" field' : `"text" is ${t === null ? 'null' : typeof t}, not a string`}`,
        file,
        'each line must be an object with a string "text" field, e.g. {"text": "..."}; other fields are ignored',
      );
    texts.push(t.replace(/\r\n/g, '\n'));
  }
  return texts.join('\n\n');
}
