/**
 * Read side of the standard Hugging Face cache (`models--org--name/{blobs,snapshots,refs}`), used
 * for offline reuse, plus the atomic `refs/<revision>` write. A snapshot counts as usable only when
 * it is complete: `config.json` is there and every weight file resolves to a real file — so a
 * download that died half-way (by us, or by another tool that writes refs first) is never used.
 */
import { constants as fsConstants } from 'node:fs';
import { access, mkdir, readFile, readdir, rename, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { COMMIT_HASH_RE } from './hub-spec.js';
import { CONFIG_FILE, SAFETENSORS_INDEX, isSafetensors, selectWeightFiles, shardsFromIndex } from './hub-files.js';

export interface CachedSnapshot {
  commit: string;
  dir: string;
}

export function refPath(storageFolder: string, revision: string): string {
  return path.join(storageFolder, 'refs', ...revision.split('/'));
}

export function snapshotDir(storageFolder: string, commit: string): string {
  return path.join(storageFolder, 'snapshots', commit);
}

/** The commit a revision points to in the cache (the revision itself for a commit hash). */
export async function readCachedCommit(storageFolder: string, revision: string): Promise<string | undefined> {
  if (COMMIT_HASH_RE.test(revision)) return revision;
  try {
    const commit = (await readFile(refPath(storageFolder, revision), 'utf8')).trim();
    return COMMIT_HASH_RE.test(commit) ? commit : undefined;
  } catch {
    return undefined;
  }
}

async function isReadableFile(p: string): Promise<boolean> {
  try {
    const st = await stat(p); // follows the snapshot symlink to its blob
    if (!st.isFile()) return false;
    await access(p, fsConstants.R_OK);
    return true;
  } catch {
    return false;
  }
}

/** Why the snapshot folder is not a complete model, or undefined when it is complete. */
export async function snapshotProblem(dir: string): Promise<string | undefined> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return 'not in the cache';
  }
  if (!(await isReadableFile(path.join(dir, CONFIG_FILE)))) return `${CONFIG_FILE} is missing`;
  let shards: string[] | undefined;
  if (names.includes(SAFETENSORS_INDEX)) {
    try {
      shards = shardsFromIndex(JSON.parse(await readFile(path.join(dir, SAFETENSORS_INDEX), 'utf8')), SAFETENSORS_INDEX);
    } catch {
      return `${SAFETENSORS_INDEX} is unreadable`;
    }
  }
  const weights = selectWeightFiles(names.filter(isSafetensors), shards);
  if (weights.length === 0) return 'no *.safetensors weights';
  for (const w of weights) {
    if (!(await isReadableFile(path.join(dir, w)))) return `${w} is missing or incomplete`;
  }
  return undefined;
}

/** The complete cached snapshot for `revision`, if any. */
export async function findCachedSnapshot(storageFolder: string, revision: string): Promise<CachedSnapshot | undefined> {
  const commit = await readCachedCommit(storageFolder, revision);
  if (!commit) return undefined;
  const dir = snapshotDir(storageFolder, commit);
  return (await snapshotProblem(dir)) === undefined ? { commit, dir } : undefined;
}

/** Point `refs/<revision>` at `commit`, atomically (write a temp file, then rename over). */
export async function writeRef(storageFolder: string, revision: string, commit: string): Promise<void> {
  if (revision === commit) return;
  const target = refPath(storageFolder, revision);
  await mkdir(path.dirname(target), { recursive: true });
  const tmp = `${target}.${process.pid}.${Date.now()}.tmp`;
  await writeFile(tmp, commit);
  await rename(tmp, target);
}
