/**
 * Atomic file creation: write to a temp file in the destination's directory, fsync it, rename it over
 * the destination, fsync the directory. Readers see either the old file or the complete new one, never
 * a partial write; on any error the temp file is removed.
 *
 *   const f = await openAtomicFile(dest);   // temp: <dir>/.<name>.tmp-<pid>-<random>
 *   await f.write(bytes); ...               // sequential, or positioned with write(bytes, position)
 *   await f.commit();                       // or f.abort()
 */
import { randomBytes } from 'node:crypto';
import fs, { promises as fsp } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { EdgeqError } from './errors.js';

export interface AtomicFile {
  /** Final destination. */
  readonly path: string;
  /** Temp file being written. */
  readonly tempPath: string;
  /** Bytes written so far at the sequential position. */
  readonly position: number;
  /** Write all of `data` at `position` (default: the sequential position, which then advances). */
  write(data: Uint8Array, position?: number): Promise<void>;
  /** fsync, close and rename over the destination. */
  commit(): Promise<void>;
  /** Close and delete the temp file. Safe to call more than once, and after a failed commit. */
  abort(): Promise<void>;
}

/** `<dir>/.<base>.tmp-<pid>-<random hex>` */
export function tempPathFor(dest: string): string {
  const dir = path.dirname(dest);
  const base = path.basename(dest);
  return path.join(dir, `.${base}.tmp-${process.pid}-${randomBytes(6).toString('hex')}`);
}

export async function openAtomicFile(dest: string): Promise<AtomicFile> {
  const tempPath = tempPathFor(dest);
  const fh = await fsp.open(tempPath, 'wx'); // exclusive: never clobber someone else's temp file
  return new AtomicFileImpl(dest, tempPath, fh);
}

/** Run `fn` with an atomic file; commit if it resolves, abort (and rethrow) if it throws. */
export async function withAtomicFile<T>(dest: string, fn: (file: AtomicFile) => Promise<T>): Promise<T> {
  const f = await openAtomicFile(dest);
  try {
    const result = await fn(f);
    await f.commit();
    return result;
  } catch (err) {
    await f.abort();
    throw err;
  }
}

/**
 * Replace `dest` atomically with `data` (bytes or UTF-8 text). Synchronous, for small files (caches,
 * JSON indexes, reports); streaming writers use openAtomicFile.
 */
export function writeFileAtomic(dest: string, data: Uint8Array | string): void {
  const bytes = typeof data === 'string' ? new TextEncoder().encode(data) : data;
  const tempPath = tempPathFor(dest);
  const fd = fs.openSync(tempPath, 'wx');
  try {
    try {
      let done = 0;
      while (done < bytes.length) done += fs.writeSync(fd, bytes, done, bytes.length - done, done);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tempPath, dest);
  } catch (err) {
    fs.rmSync(tempPath, { force: true });
    throw err;
  }
  syncDirSync(path.dirname(dest));
}

/** Async twin of writeFileAtomic. */
export async function writeFileAtomicAsync(dest: string, data: Uint8Array | string): Promise<void> {
  const bytes = typeof data === 'string' ? new TextEncoder().encode(data) : data;
  await withAtomicFile(dest, (f) => f.write(bytes));
}

class AtomicFileImpl implements AtomicFile {
  private state: 'open' | 'committed' | 'aborted' = 'open';
  position = 0;

  constructor(
    readonly path: string,
    readonly tempPath: string,
    private fh: FileHandle,
  ) {}

  async write(data: Uint8Array, position?: number): Promise<void> {
    this.assertOpen('write');
    const sequential = position === undefined;
    let pos = sequential ? this.position : position;
    let done = 0;
    while (done < data.length) {
      const { bytesWritten } = await this.fh.write(data, done, data.length - done, pos);
      done += bytesWritten;
      pos += bytesWritten;
    }
    if (sequential) this.position = pos;
  }

  async commit(): Promise<void> {
    this.assertOpen('commit');
    try {
      await this.fh.sync();
      await this.fh.close();
      await fsp.rename(this.tempPath, this.path);
    } catch (err) {
      await this.abort();
      throw err;
    }
    this.state = 'committed';
    await syncDir(path.dirname(this.path));
  }

  async abort(): Promise<void> {
    if (this.state !== 'open') return;
    this.state = 'aborted';
    await this.fh.close().catch(() => undefined); // may already be closed by a failed commit
    await fsp.rm(this.tempPath, { force: true });
  }

  private assertOpen(op: string): void {
    if (this.state !== 'open') {
      throw new EdgeqError('E_WRITER_STATE', `${op} on ${this.state} atomic file ${this.path}`);
    }
  }
}

/** Make the rename durable. Best effort: some platforms/filesystems refuse fsync on a directory. */
async function syncDir(dir: string): Promise<void> {
  let fh: FileHandle | undefined;
  try {
    fh = await fsp.open(dir, 'r');
    await fh.sync();
  } catch {
    // ignore: durability of the directory entry is an optimisation, not a correctness requirement
  } finally {
    await fh?.close().catch(() => undefined);
  }
}

function syncDirSync(dir: string): void {
  let fd: number | undefined;
  try {
    fd = fs.openSync(dir, 'r');
    fs.fsyncSync(fd);
  } catch {
    // best effort, as above
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}
