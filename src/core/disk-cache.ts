/**
 * edgeq's derived-data cache (tokenized texts, calibration samples) under edgeqCacheDir(). Entries are
 * named by a content hash of everything that determines them, so they never need invalidation. The cache
 * is best effort: a missing or unreadable entry is a miss, and a failed write (read-only or full disk)
 * only costs time. Entries are written atomically, so a reader never sees a partial file.
 */
import fs from 'node:fs';
import path from 'node:path';
import { writeFileAtomic } from './atomic-write.js';
import { edgeqCacheDir } from './paths.js';

/** `<cache>/<kind>/<name>`, e.g. cacheFilePath('tokens', `${sha}.u32`). */
export function cacheFilePath(kind: string, name: string): string {
  return path.join(edgeqCacheDir(), kind, name);
}

/** The entry's bytes in a fresh, 0-offset buffer (safe to view as any typed array), or null on a miss. */
export function readCacheFile(file: string): Uint8Array | null {
  try {
    const buf = fs.readFileSync(file);
    const out = new Uint8Array(buf.byteLength);
    out.set(buf);
    return out;
  } catch {
    return null;
  }
}

/** Store an entry atomically; returns false (and does not throw) when the cache is not writable. */
export function writeCacheFile(file: string, bytes: Uint8Array): boolean {
  try {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    writeFileAtomic(file, bytes);
    return true;
  } catch {
    return false;
  }
}
