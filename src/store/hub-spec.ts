/**
 * Parsing of `--model` specs that name a Hugging Face hub repository: `org/name[@revision]` or
 * `hf://org/name[@revision]`, plus the small amount of cache-path and environment plumbing that goes
 * with it. Pure functions only (no network, no fs) so they are cheap to test and reuse.
 */
import os from 'node:os';
import path from 'node:path';
import { MissingFileError, UsageError } from '../core/errors.js';

export const DEFAULT_REVISION = 'main';
export const DEFAULT_HUB_ENDPOINT = 'https://huggingface.co';
export const HF_URL_PREFIX = 'hf://';

/** A full 40-hex git commit id: such a revision never moves, so a cached snapshot of it is final. */
export const COMMIT_HASH_RE = /^[0-9a-f]{40}$/;

export interface HubSpec {
  /** `org/name`. */
  repo: string;
  /** Branch, tag or commit; `main` when the spec gave none. */
  revision: string;
}

const SPEC_HINT = 'pass a local model folder, or a Hugging Face repo id like org/name or hf://org/name@revision';

/** One part of a repo id: ASCII word characters, `-` and `.`, starting and ending with a word character. */
const REPO_PART_RE = /^[A-Za-z0-9_](?:[A-Za-z0-9_.-]{0,94}[A-Za-z0-9_])?$/;

/** Why `repo` is not a valid `org/name` hub id, or undefined when it is. */
export function repoIdProblem(repo: string): string | undefined {
  const parts = repo.split('/');
  if (parts.length !== 2) return 'a repo id has exactly one "/" (org/name)';
  for (const part of parts) {
    if (!REPO_PART_RE.test(part)) {
      return `"${part}" may only contain letters, digits, "_", "-" and "." (not at the start or end), at most 96 characters`;
    }
  }
  if (repo.includes('--') || repo.includes('..')) return '"--" and ".." are not allowed in a repo id';
  if (repo.endsWith('.git')) return 'a repo id cannot end with ".git"';
  return undefined;
}

/** Why `revision` is not an acceptable branch/tag/commit name, or undefined when it is. */
export function revisionProblem(revision: string): string | undefined {
  if (revision.length === 0) return 'the revision after "@" is empty';
  if (revision.length > 255) return 'the revision is too long';
  if (!/^[A-Za-z0-9_.+\-/]+$/.test(revision)) {
    return 'a revision may only contain letters, digits, "_", ".", "+", "-" and "/"';
  }
  const segments = revision.split('/');
  if (segments.some((s) => s === '' || s === '.' || s === '..')) {
    return 'a revision cannot have empty, "." or ".." path segments';
  }
  return undefined;
}

function parseRepoAndRevision(body: string, spec: string): HubSpec {
  const at = body.indexOf('@');
  const repo = at < 0 ? body : body.slice(0, at);
  const revision = at < 0 ? DEFAULT_REVISION : body.slice(at + 1);
  const repoProblem = repoIdProblem(repo);
  if (repoProblem) {
    throw new UsageError('E_HUB_BAD_REPO_ID', `'${spec}' is not a valid Hugging Face repo id: ${repoProblem}`, SPEC_HINT);
  }
  const revProblem = revisionProblem(revision);
  if (revProblem) {
    throw new UsageError('E_HUB_BAD_REVISION', `'${spec}' has an invalid revision: ${revProblem}`, SPEC_HINT);
  }
  return { repo, revision };
}

/** True when `spec` is written like a file-system path rather than like `org/name[@rev]`. */
export function looksLikePath(spec: string): boolean {
  if (/^[.~/\\]/.test(spec) || /^[A-Za-z]:/.test(spec) || spec.includes('\\')) return true;
  const beforeAt = spec.split('@', 1)[0] ?? spec;
  return beforeAt.split('/').length - 1 !== 1;
}

/** Expand a leading `~` / `~/` to the home directory (for specs that were quoted past the shell). */
export function expandHome(p: string): string {
  if (p === '~') return os.homedir();
  if (p.startsWith('~/')) return path.join(os.homedir(), p.slice(2));
  return p;
}

/**
 * Interpret a spec that is NOT an existing local path. `hf://…` is always a hub id; otherwise a spec
 * that looks like a path gives "no such folder", and `org/name[@rev]` is a hub id.
 */
export function parseHubSpec(spec: string): HubSpec {
  if (spec.startsWith(HF_URL_PREFIX)) {
    return parseRepoAndRevision(spec.slice(HF_URL_PREFIX.length), spec);
  }
  if (looksLikePath(spec)) {
    throw new MissingFileError(
      'E_NO_SUCH_FOLDER',
      `no such folder: ${spec}`,
      `${SPEC_HINT} (a hub id has exactly one "/")`,
    );
  }
  return parseRepoAndRevision(spec, spec);
}

/** Boolean environment flags the way huggingface_hub reads them (1/true/yes/on). */
export function envFlag(value: string | undefined): boolean {
  return value !== undefined && ['1', 'true', 'yes', 'on'].includes(value.trim().toLowerCase());
}

/** The hub base URL without a trailing slash; rejects values that are not http(s) URLs. */
export function normalizeEndpoint(endpoint: string | undefined): string {
  const raw = (endpoint ?? '').trim() || DEFAULT_HUB_ENDPOINT;
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new UsageError('E_HUB_BAD_ENDPOINT', `invalid hub endpoint '${raw}'`, 'HF_ENDPOINT must be an http(s) URL such as https://huggingface.co');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new UsageError('E_HUB_BAD_ENDPOINT', `invalid hub endpoint '${raw}'`, 'HF_ENDPOINT must be an http(s) URL such as https://huggingface.co');
  }
  return raw.replace(/\/+$/, '');
}
