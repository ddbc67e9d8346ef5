/**
 * `--model <spec>`: a local folder, or a Hugging Face hub repo (`org/name[@revision]`,
 * `hf://org/name[@revision]`) fetched into — or, offline, reused from — the standard Hugging Face
 * cache (`$HF_HUB_CACHE`, else `$HF_HOME/hub`, else `~/.cache/huggingface/hub`).
 *
 * Order of precedence:
 *   1. an existing path on disk always wins (a file instead of a folder is an error);
 *   2. something that looks like a path but does not exist → MissingFileError "no such folder";
 *   3. otherwise a hub id. Offline (`opts.offline`, `HF_HUB_OFFLINE=1`, or the hub unreachable) a
 *      complete cached snapshot of the revision is used; a pinned 40-hex commit that is already
 *      cached never touches the network.
 */
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { getHFHubCachePath, getRepoFolderName } from '@huggingface/hub';
import { HubError, UsageError } from '../core/errors.js';
import { findCachedSnapshot } from './hub-cache.js';
import { downloadModelSnapshot, isUnreachable, toHubError, type HubProgress, type NetState } from './hub-download.js';
import { COMMIT_HASH_RE, HF_URL_PREFIX, envFlag, expandHome, normalizeEndpoint, parseHubSpec } from './hub-spec.js';

export type ModelSourceProgress = HubProgress;

export interface ResolveModelSourceOptions {
  /** Hub cache root (the folder holding `models--org--name`). Default: the standard HF cache. */
  cacheDir?: string;
  /** Hub base URL. Default: `$HF_ENDPOINT`, else https://huggingface.co. */
  endpoint?: string;
  /** Access token (must start with `hf_`). Default: `$HF_TOKEN`. */
  token?: string;
  /** Never touch the network. Default: `$HF_HUB_OFFLINE` is 1/true/yes/on. */
  offline?: boolean;
  /** Called as each needed file starts, while its bytes arrive (≤ 10/s), and when it is done. */
  onProgress?: (p: ModelSourceProgress) => void;
  /** Custom fetch (proxies, tests). Default: global fetch. */
  fetch?: typeof fetch;
}

export interface ModelSource {
  /** Folder with config.json, tokenizer files and *.safetensors (for hub ids: `snapshots/<commit>`). */
  dir: string;
  /**
   * `local`: a folder on disk. `hub-download`: at least one file came over the network.
   * `hub-cache`: everything was already in the HF cache (offline, or online with nothing new).
   */
  source: 'local' | 'hub-download' | 'hub-cache';
  repo?: string;
  revision?: string;
  commit?: string;
}

const OFFLINE_HINT =
  'connect to the internet (or set HF_ENDPOINT to a reachable mirror), or download the model elsewhere and pass its local folder to --model';

async function statOrUndefined(p: string): Promise<Awaited<ReturnType<typeof stat>> | undefined> {
  try {
    return await stat(p);
  } catch {
    return undefined;
  }
}

export async function resolveModelSource(spec: string, opts: ResolveModelSourceOptions = {}): Promise<ModelSource> {
  const trimmed = spec.trim();
  if (trimmed.length === 0) {
    throw new UsageError('E_MODEL_SPEC_EMPTY', '--model is empty', 'pass a local model folder or a Hugging Face repo id (org/name)');
  }

  if (!trimmed.startsWith(HF_URL_PREFIX)) {
    const local = path.resolve(expandHome(trimmed));
    const st = await statOrUndefined(local);
    if (st?.isDirectory()) return { dir: local, source: 'local' };
    if (st) {
      throw new UsageError('E_MODEL_NOT_A_FOLDER', `${trimmed} is a file, not a model folder`, 'pass the folder that contains config.json and the *.safetensors weights');
    }
  }

  const { repo, revision } = parseHubSpec(trimmed);
  const cacheDir = opts.cacheDir ?? getHFHubCachePath();
  const endpoint = normalizeEndpoint(opts.endpoint ?? process.env['HF_ENDPOINT']);
  const token = (opts.token ?? process.env['HF_TOKEN'])?.trim() || undefined;
  const offline = opts.offline ?? envFlag(process.env['HF_HUB_OFFLINE']);
  const storageFolder = path.join(cacheDir, getRepoFolderName({ type: 'model', name: repo }));

  const fromCache = async (): Promise<ModelSource | undefined> => {
    const cached = await findCachedSnapshot(storageFolder, revision);
    return cached && { dir: cached.dir, source: 'hub-cache', repo, revision, commit: cached.commit };
  };
  const notCached = (why: string): HubError =>
    new HubError('E_HUB_OFFLINE', `${why}, and ${repo}@${revision} is not in the local Hugging Face cache (${cacheDir})`, OFFLINE_HINT);

  if (offline) {
    const cached = await fromCache();
    if (cached) return cached;
    throw notCached(`offline mode is on (${opts.offline !== undefined ? 'offline option' : 'HF_HUB_OFFLINE'})`);
  }
  if (COMMIT_HASH_RE.test(revision)) {
    const cached = await fromCache();
    if (cached) return cached;
  }

  const state: NetState = { responded: false };
  try {
    const res = await downloadModelSnapshot(
      { repo, revision, cacheDir, storageFolder, endpoint, token, fetch: opts.fetch ?? globalThis.fetch, onProgress: opts.onProgress },
      state,
    );
    return { dir: res.dir, source: res.downloadedFiles > 0 ? 'hub-download' : 'hub-cache', repo, revision, commit: res.commit };
  } catch (err) {
    if (isUnreachable(err, state)) {
      const cached = await fromCache();
      if (cached) return cached;
      const cause = state.networkError instanceof Error ? (state.networkError.cause as Error | undefined)?.message ?? state.networkError.message : String(state.networkError);
      throw notCached(`cannot reach the Hugging Face hub at ${endpoint} (${cause})`);
    }
    throw toHubError(err, { repo, revision, endpoint, token }, state);
  }
}
