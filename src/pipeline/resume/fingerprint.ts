/**
 * The fingerprint of a quantization request: everything that changes the bytes of the output — edgeq's
 * version, the format, method and grid, every option recorded in the provenance, the calibration (text
 * hash, samples, length, seed), the tensor plan and the content of every file of the model folder. A
 * resumed run must have the same fingerprint as the interrupted one; `fingerprintMismatch` names the
 * first field that differs, as the command-line flag that sets it.
 */
import { createHash } from 'node:crypto';
import fs, { promises as fsp } from 'node:fs';
import path from 'node:path';

export interface RequestFingerprint {
  edgeqVersion: string;
  format: string;
  method: string;
  bits: number;
  groupSize: number;
  sym: boolean;
  actOrder: boolean;
  damp: number;
  imatrix: boolean;
  fallback: boolean;
  denseDtype: string;
  calibration: { name: string; sha256: string; samples: number; seqlen: number; seed: number } | null;
  /** SHA-256 of the plan's entries (names, shapes, types, grids, in write order). */
  plan: string;
  /** Every regular file of the model folder (not dot-files): name → size and SHA-256. */
  model: Record<string, { bytes: number; sha256: string }>;
}

/** Scalar fields in the order they are checked, with the flag (or thing) that sets each. */
export const FINGERPRINT_FIELDS: readonly { key: string; label: string }[] = [
  { key: 'edgeqVersion', label: 'edgeq version' },
  { key: 'format', label: '--format' },
  { key: 'method', label: '--method' },
  { key: 'bits', label: '--bits' },
  { key: 'groupSize', label: '--group-size' },
  { key: 'sym', label: '--sym' },
  { key: 'actOrder', label: '--act-order' },
  { key: 'damp', label: '--damp' },
  { key: 'imatrix', label: '--imatrix' },
  { key: 'fallback', label: '--fallback' },
  { key: 'denseDtype', label: 'dense tensor dtype (from the model)' },
  { key: 'calibration.name', label: '--calib' },
  { key: 'calibration.sha256', label: 'calibration text (SHA-256)' },
  { key: 'calibration.samples', label: '--calib-samples' },
  { key: 'calibration.seqlen', label: '--calib-seqlen' },
  { key: 'calibration.seed', label: '--seed' },
  { key: 'plan', label: 'tensor plan (SHA-256)' },
];

export interface FingerprintMismatch {
  /** Dotted key, e.g. 'calibration.seed' or 'model.model.safetensors'. */
  field: string;
  /** What the user changed, e.g. '--seed' or 'model file model.safetensors'. */
  label: string;
  saved: string;
  now: string;
}

function get(fp: unknown, key: string): unknown {
  let v: unknown = fp;
  for (const k of key.split('.')) v = v === null || typeof v !== 'object' ? undefined : (v as Record<string, unknown>)[k];
  return v;
}

const show = (v: unknown): string => (v === undefined ? '(none)' : v === null ? '(no calibration)' : typeof v === 'string' ? v : JSON.stringify(v));
const short = (h: string | undefined): string => (h ? `${h.slice(0, 12)}…` : '(absent)');

/** The first difference between the interrupted run's fingerprint and this run's, or null. */
export function fingerprintMismatch(saved: RequestFingerprint, now: RequestFingerprint): FingerprintMismatch | null {
  for (const { key, label } of FINGERPRINT_FIELDS) {
    const a = get(saved, key);
    const b = get(now, key);
    // calibration: null vs object is reported once, as --calib
    if (key.startsWith('calibration.') && (saved.calibration === null) !== (now.calibration === null)) {
      return { field: 'calibration', label: '--calib', saved: show(saved.calibration?.name ?? null), now: show(now.calibration?.name ?? null) };
    }
    if (JSON.stringify(a) !== JSON.stringify(b)) return { field: key, label, saved: show(a), now: show(b) };
  }
  const names = [...new Set([...Object.keys(saved.model), ...Object.keys(now.model)])].sort();
  for (const name of names) {
    const a = saved.model[name];
    const b = now.model[name];
    if (a?.sha256 !== b?.sha256 || a?.bytes !== b?.bytes) {
      return { field: `model.${name}`, label: `model file ${name}`, saved: a ? `${a.bytes} bytes, SHA-256 ${short(a.sha256)}` : '(absent)', now: b ? `${b.bytes} bytes, SHA-256 ${short(b.sha256)}` : '(absent)' };
    }
  }
  return null;
}

/** SHA-256 (hex) of a JSON value's canonical text (the plan). */
export function sha256Json(v: unknown): string {
  return createHash('sha256').update(JSON.stringify(v)).digest('hex');
}

/** Size and SHA-256 of every regular file (symlinks followed, dot-files skipped) directly in `dir`. */
export async function hashModelFiles(dir: string): Promise<Record<string, { bytes: number; sha256: string }>> {
  const out: Record<string, { bytes: number; sha256: string }> = {};
  for (const name of (await fsp.readdir(dir)).sort()) {
    if (name.startsWith('.')) continue;
    const file = path.join(dir, name);
    const st = await fsp.stat(file).catch(() => undefined);
    if (!st?.isFile()) continue;
    const h = createHash('sha256');
    await new Promise<void>((resolve, reject) => {
      fs.createReadStream(file, { highWaterMark: 4 << 20 })
        .on('data', (chunk) => h.update(chunk))
        .on('end', resolve)
        .on('error', reject);
    });
    out[name] = { bytes: st.size, sha256: h.digest('hex') };
  }
  return out;
}
