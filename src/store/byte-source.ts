/**
 * Positioned byte reads. Every byte of a checkpoint edgeq parses comes through a ByteSource, and every
 * request is checked against the source's size BEFORE a buffer is allocated, so a hostile header can
 * never make us allocate more than the file actually holds.
 * This module has no Node.js imports (it also runs in a browser); files on disk are file-byte-source.ts.
 */
import { EdgeqError, FormatError, UnsupportedError } from '../core/errors.js';

export interface ByteSource {
  /** Total size in bytes. */
  readonly size: number;
  /** File path (or a label for in-memory sources), used in error messages. */
  readonly path: string;
  /** Exactly `length` bytes starting at `offset`, in a fresh buffer; FormatError 'E_TRUNCATED' if out of range. */
  read(offset: number, length: number): Promise<Uint8Array>;
  close(): Promise<void>;
}

/** Process-wide read statistics (tests assert that no request ever exceeded the file it targeted). */
export const readStats = {
  /** Largest single buffer any ByteSource allocated for a read. */
  largestRequest: 0,
  requests: 0,
  bytesRead: 0,
  reset(): void {
    readStats.largestRequest = 0;
    readStats.requests = 0;
    readStats.bytesRead = 0;
  },
};

/** Value-side companion of the interface, so `ByteSource.stats.largestRequest` works too. */
export const ByteSource = { stats: readStats } as const;

/** Shared range checking, bookkeeping and allocation; subclasses only fill a buffer. */
export abstract class CheckedByteSource implements ByteSource {
  protected closed = false;
  constructor(
    readonly path: string,
    readonly size: number,
  ) {}

  protected abstract fill(target: Uint8Array, offset: number): Promise<void>;
  protected abstract release(): Promise<void>;

  async read(offset: number, length: number): Promise<Uint8Array> {
    if (this.closed) throw new EdgeqError('E_CLOSED', `${this.path}: read after close`);
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0) {
      throw new FormatError('E_OFFSET', `invalid read range (offset ${offset}, length ${length})`, this.path);
    }
    if (offset > this.size || length > this.size - offset) {
      throw new FormatError(
        'E_TRUNCATED',
        `file is truncated: need bytes [${offset}, ${offset + length}) but it has only ${this.size}`,
        this.path,
        're-download the file; a partial download or an interrupted copy leaves a short file',
      );
    }
    // only now, with the range known to lie inside the source, allocate
    let target: Uint8Array;
    try {
      target = new Uint8Array(length);
    } catch {
      throw new UnsupportedError('E_TOO_LARGE', `${this.path}: cannot allocate a ${length}-byte read buffer`);
    }
    readStats.requests++;
    if (length > readStats.largestRequest) readStats.largestRequest = length;
    if (length > 0) await this.fill(target, offset);
    readStats.bytesRead += length;
    return target;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.release();
  }
}

/** An in-memory ByteSource with exactly the same checks (tests, fuzzing, already-downloaded bytes). */
export class MemoryByteSource extends CheckedByteSource {
  constructor(
    private readonly bytes: Uint8Array,
    path = '<memory>',
  ) {
    super(path, bytes.length);
  }

  protected async fill(target: Uint8Array, offset: number): Promise<void> {
    target.set(this.bytes.subarray(offset, offset + target.length));
  }

  protected async release(): Promise<void> {}
}
