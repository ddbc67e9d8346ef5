/**
 * Pure parsing and validation of a safetensors header. No I/O: callers pass the 8-byte prefix or the
 * header bytes plus the file size, and get back fully checked tensor descriptions or a FormatError
 * whose message names the tensor and the problem.
 *
 * Layout: [u64 LE header length N][N bytes UTF-8 JSON, maybe space-padded][data region]
 * JSON: { "__metadata__"?: {str: str}, "<name>": { dtype, shape: int[], data_offsets: [begin, end] } }
 * with offsets relative to the data region (which starts at 8 + N).
 */
import { STORAGE_DTYPES, isStorageDtype, type StorageDtype } from '../../core/dtype.js';
import { FormatError } from '../../core/errors.js';
import { SAFETENSORS_LIMITS as LIMITS } from './limits.js';
import type { TensorInfo } from './types.js';

export interface ParsedHeader {
  /** N, the JSON header length in bytes. */
  readonly headerLength: number;
  /** Absolute position of the data region (8 + N). */
  readonly dataStart: number;
  readonly metadata: Readonly<Record<string, string>>;
  /** In header order. */
  readonly tensors: ReadonlyMap<string, TensorInfo>;
}

/** A checked tensor declaration (shared with the writer). */
export interface TensorDecl {
  readonly name: string;
  readonly dtype: StorageDtype;
  readonly shape: readonly number[];
  readonly numel: number;
  readonly byteLength: number;
}

const METADATA_KEY = '__metadata__';

/**
 * Validate the u64 header length from the first 8 bytes against the limits and the file size.
 * Returns N as a (safe) number.
 */
export function parseHeaderLength(prefix: Uint8Array, fileSize: number, file?: string): number {
  if (fileSize < LIMITS.prefixBytes || prefix.length < LIMITS.prefixBytes) {
    throw new FormatError(
      'E_TRUNCATED',
      `file is ${fileSize} bytes, too short for the 8-byte safetensors header length`,
      file,
    );
  }
  const n = new DataView(prefix.buffer, prefix.byteOffset, 8).getBigUint64(0, true);
  if (n > BigInt(LIMITS.maxHeaderBytes)) {
    throw new FormatError(
      'E_HEADER_TOO_LARGE',
      `header length ${n} exceeds the ${LIMITS.maxHeaderBytes}-byte limit (not a safetensors file, or corrupt)`,
      file,
    );
  }
  if (n > BigInt(fileSize - LIMITS.prefixBytes)) {
    throw new FormatError(
      'E_HEADER_TOO_LARGE',
      `header length ${n} is larger than the ${fileSize - LIMITS.prefixBytes} bytes after the prefix (truncated file?)`,
      file,
    );
  }
  return Number(n);
}

/** Parse and validate the JSON header. `fileSize` is the size of the whole file. */
export function parseSafetensorsHeader(headerBytes: Uint8Array, fileSize: number, file?: string): ParsedHeader {
  const headerLength = headerBytes.length;
  const dataStart = LIMITS.prefixBytes + headerLength;
  if (headerLength > LIMITS.maxHeaderBytes || dataStart > fileSize) {
    throw new FormatError('E_HEADER_TOO_LARGE', `header of ${headerLength} bytes does not fit the file`, file);
  }
  const root = parseJsonObject(headerBytes, file);

  const names = Object.keys(root);
  const tensorCount = names.length - (Object.prototype.hasOwnProperty.call(root, METADATA_KEY) ? 1 : 0);
  if (tensorCount > LIMITS.maxTensors) {
    throw new FormatError(
      'E_TOO_MANY_TENSORS',
      `header declares ${tensorCount} tensors, more than the limit of ${LIMITS.maxTensors}`,
      file,
    );
  }

  let metadata: Record<string, string> = Object.create(null) as Record<string, string>;
  const tensors = new Map<string, TensorInfo>();
  const dataSize = fileSize - dataStart;
  for (const name of names) {
    const entry = root[name];
    if (name === METADATA_KEY) {
      metadata = parseMetadata(entry, file);
      continue;
    }
    if (!isPlainObject(entry)) {
      throw new FormatError('E_HEADER_SCHEMA', `tensor '${name}': entry is not an object`, file);
    }
    const decl = checkTensorDecl(name, entry['dtype'], entry['shape'], file);
    const [begin, end] = parseOffsets(name, entry['data_offsets'], dataSize, file);
    if (end - begin !== decl.byteLength) {
      throw new FormatError(
        'E_DTYPE_SIZE',
        `tensor '${name}': data_offsets span ${end - begin} bytes but ${decl.dtype} ` +
          `[${decl.shape.join(', ')}] needs ${decl.numel} × ${STORAGE_DTYPES[decl.dtype].bytes} = ${decl.byteLength}`,
        file,
      );
    }
    tensors.set(name, {
      name,
      dtype: decl.dtype,
      shape: decl.shape,
      numel: decl.numel,
      byteOffset: dataStart + begin,
      byteLength: decl.byteLength,
      file: file ?? '<memory>',
    });
  }
  checkNoOverlap(tensors, file);
  return { headerLength, dataStart, metadata, tensors };
}

/**
 * Check a tensor's dtype and shape (used by the parser on untrusted JSON and by the writer on caller
 * input): known dtype, rank ≤ 8, non-negative safe-integer dims, numel × dtype size a safe integer.
 */
export function checkTensorDecl(name: string, dtype: unknown, shape: unknown, file?: string): TensorDecl {
  if (!isStorageDtype(dtype)) {
    throw new FormatError(
      'E_DTYPE',
      `tensor '${name}': unsupported dtype ${describe(dtype)} (supported: ${Object.keys(STORAGE_DTYPES).join(', ')})`,
      file,
    );
  }
  if (!Array.isArray(shape)) {
    throw new FormatError('E_SHAPE', `tensor '${name}': shape is ${describe(shape)}, not an array`, file);
  }
  if (shape.length > LIMITS.maxRank) {
    throw new FormatError('E_SHAPE', `tensor '${name}': rank ${shape.length} exceeds the limit of ${LIMITS.maxRank}`, file);
  }
  const bytes = STORAGE_DTYPES[dtype].bytes;
  let numel = 1;
  for (const d of shape as unknown[]) {
    if (typeof d !== 'number' || !Number.isSafeInteger(d) || d < 0) {
      throw new FormatError(
        'E_SHAPE',
        `tensor '${name}': dimension ${describe(d)} in shape [${shape.map(describe).join(', ')}] is not a non-negative integer`,
        file,
      );
    }
    // overflow check before multiplying: numel × d × bytes must stay a safe integer
    if (d !== 0 && numel > Math.floor(Number.MAX_SAFE_INTEGER / bytes / d)) {
      throw new FormatError('E_SHAPE', `tensor '${name}': shape [${shape.join(', ')}] is too large (size overflows)`, file);
    }
    numel *= d;
  }
  return { name, dtype, shape: (shape as number[]).slice(), numel, byteLength: numel * bytes };
}

function parseOffsets(name: string, offsets: unknown, dataSize: number, file?: string): [number, number] {
  if (!Array.isArray(offsets) || offsets.length !== 2) {
    throw new FormatError('E_OFFSET', `tensor '${name}': data_offsets must be [begin, end], got ${describe(offsets)}`, file);
  }
  const [begin, end] = offsets as unknown[];
  if (!isIndex(begin) || !isIndex(end)) {
    throw new FormatError(
      'E_OFFSET',
      `tensor '${name}': data_offsets [${describe(begin)}, ${describe(end)}] are not non-negative integers`,
      file,
    );
  }
  if (begin > end) {
    throw new FormatError('E_OFFSET', `tensor '${name}': data_offsets begin ${begin} is after end ${end}`, file);
  }
  if (end > dataSize) {
    throw new FormatError(
      'E_OFFSET',
      `tensor '${name}': data ends at ${end} but the data region has only ${dataSize} bytes (truncated file?)`,
      file,
    );
  }
  return [begin, end];
}

/** Two non-empty tensors may not share a byte. Gaps are allowed; empty tensors overlap nothing. */
function checkNoOverlap(tensors: ReadonlyMap<string, TensorInfo>, file?: string): void {
  const spans = [...tensors.values()].filter((t) => t.byteLength > 0);
  spans.sort((a, b) => a.byteOffset - b.byteOffset || a.byteLength - b.byteLength);
  let prev: TensorInfo | undefined;
  for (const t of spans) {
    if (prev && t.byteOffset < prev.byteOffset + prev.byteLength) {
      throw new FormatError(
        'E_OVERLAP',
        `tensor '${t.name}' overlaps tensor '${prev.name}' in the data region`,
        file,
      );
    }
    if (!prev || t.byteOffset + t.byteLength > prev.byteOffset + prev.byteLength) prev = t;
  }
}

function parseMetadata(entry: unknown, file?: string): Record<string, string> {
  if (!isPlainObject(entry)) {
    throw new FormatError('E_METADATA', `__metadata__ is ${describe(entry)}, not an object of strings`, file);
  }
  const out = Object.create(null) as Record<string, string>;
  for (const key of Object.keys(entry)) {
    const v = entry[key];
    if (typeof v !== 'string') {
      throw new FormatError('E_METADATA', `__metadata__ value for '${key}' is ${describe(v)}, not a string`, file);
    }
    out[key] = v;
  }
  return out;
}

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

function parseJsonObject(bytes: Uint8Array, file?: string): Record<string, unknown> {
  let text: string;
  try {
    text = utf8.decode(bytes);
  } catch {
    throw new FormatError('E_HEADER_JSON', 'header is not valid UTF-8 (not a safetensors file, or corrupt)', file);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    throw new FormatError('E_HEADER_JSON', `header is not valid JSON: ${why.slice(0, 200)}`, file);
  }
  if (!isPlainObject(value)) {
    throw new FormatError('E_HEADER_JSON', `header JSON is ${describe(value)}, not an object`, file);
  }
  return value;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isIndex(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

/** Short, safe rendering of an untrusted JSON value for error messages. */
function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return `an array of ${v.length}`;
  if (typeof v === 'object') return 'an object';
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v);
  return String(v);
}
