/**
 * Atomic folder output. Everything is written into a temporary sibling folder
 * `<parent>/.<name>.tmp-<pid>-<random hex>` that is renamed into place by commit(); abort() (or any
 * error in withAtomicDir) deletes it. So the destination either does not change or appears complete.
 *
 * An existing destination is refused (UsageError E_OUTPUT_EXISTS) unless `overwrite: true`; an empty
 * folder counts as absent. With overwrite, the old folder is moved aside only once the new one is
 * complete, then the new one is renamed in and the old one deleted (if the second rename fails the old
 * folder is moved back). The destination is checked both when opening (fail fast, before hours of
 * quantization) and again at commit.
 */
import { randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { UsageError } from '../../core/errors.js';

export interface AtomicDirOptions {
  /** Replace an existing destination folder (only after the new one is complete). */
  overwrite?: boolean;
}

export interface AtomicDir {
  /** Final destination. */
  readonly path: string;
  /** The temporary folder being filled; write everything here. */
  readonly tempPath: string;
  /** Rename the temporary folder into place (replacing the old folder when overwrite is set). */
  commit(): Promise<void>;
  /** Delete the temporary folder. Safe to call more than once and after a failed commit. */
  abort(): Promise<void>;
}

/** `<parent>/.<name>.tmp-<pid>-<random hex>` (or `.old-` for a folder being replaced). */
export function tempDirFor(dest: string, kind: 'tmp' | 'old' = 'tmp'): string {
  const abs = path.resolve(dest);
  return path.join(path.dirname(abs), `.${path.basename(abs)}.${kind}-${process.pid}-${randomBytes(6).toString('hex')}`);
}

export async function openAtomicDir(dest: string, opts: AtomicDirOptions = {}): Promise<AtomicDir> {
  const abs = path.resolve(dest);
  if (path.basename(abs) === '' || abs === path.dirname(abs)) {
    throw new UsageError('E_OUTPUT_PATH', `cannot write a model to ${dest}`, 'choose a folder path such as ./out/model-int4');
  }
  await checkDestination(abs, opts.overwrite === true);
  await fsp.mkdir(path.dirname(abs), { recursive: true });
  const tempPath = tempDirFor(abs);
  await fsp.mkdir(tempPath); // fails if it exists: never share a temp folder
  return new AtomicDirImpl(abs, tempPath, opts.overwrite === true);
}

/** Run `fn` on a fresh temp folder; commit if it resolves, delete the temp folder if it throws. */
export async function withAtomicDir<T>(dest: string, opts: AtomicDirOptions, fn: (tempPath: string) => Promise<T>): Promise<T> {
  const dir = await openAtomicDir(dest, opts);
  try {
    const result = await fn(dir.tempPath);
    await dir.commit();
    return result;
  } catch (err) {
    await dir.abort();
    throw err;
  }
}

class AtomicDirImpl implements AtomicDir {
  private state: 'open' | 'committed' | 'aborted' = 'open';

  constructor(
    readonly path: string,
    readonly tempPath: string,
    private readonly overwrite: boolean,
  ) {}

  async commit(): Promise<void> {
    if (this.state !== 'open') throw new UsageError('E_WRITER_STATE', `commit on ${this.state} output folder ${this.path}`);
    try {
      await syncDir(this.tempPath);
      const existing = await checkDestination(this.path, this.overwrite);
      if (existing === 'nonempty') {
        await this.replace();
      } else {
        if (existing === 'empty') await fsp.rmdir(this.path); // rmdir fails (safely) if it was filled meanwhile
        await fsp.rename(this.tempPath, this.path);
      }
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
    await fsp.rm(this.tempPath, { recursive: true, force: true });
  }

  /** Move the old folder aside, move the new one in, delete the old one (restore it on failure). */
  private async replace(): Promise<void> {
    const old = tempDirFor(this.path, 'old');
    await fsp.rename(this.path, old);
    try {
      await fsp.rename(this.tempPath, this.path);
    } catch (err) {
      await fsp.rename(old, this.path).catch(() => undefined);
      throw err;
    }
    await fsp.rm(old, { recursive: true, force: true });
  }
}

/** 'absent' | 'empty' | 'nonempty'; throws when the destination may not be replaced. */
async function checkDestination(dest: string, overwrite: boolean): Promise<'absent' | 'empty' | 'nonempty'> {
  let st;
  try {
    st = await fsp.lstat(dest);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 'absent';
    throw err;
  }
  if (!st.isDirectory()) {
    throw new UsageError(
      'E_OUTPUT_EXISTS',
      `output path ${dest} exists and is not a folder`,
      'choose another output folder; edgeq never replaces a file with a model folder',
    );
  }
  if ((await fsp.readdir(dest)).length === 0) return 'empty';
  if (!overwrite) {
    throw new UsageError(
      'E_OUTPUT_EXISTS',
      `output folder ${dest} already exists and is not empty`,
      'choose another output folder, or pass --overwrite to replace it (the old folder is kept until the new one is complete)',
    );
  }
  return 'nonempty';
}

/** Best-effort fsync of a folder's entries. */
async function syncDir(dir: string): Promise<void> {
  const fh = await fsp.open(dir, 'r').catch(() => undefined);
  if (!fh) return;
  try {
    await fh.sync();
  } catch {
    // some filesystems refuse fsync on a directory; durability is best effort
  } finally {
    await fh.close().catch(() => undefined);
  }
}
