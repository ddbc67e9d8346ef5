/**
 * Online side of `--model org/name`: resolve the revision to a commit, list the repo root, and fetch
 * only the files edgeq needs into the standard Hugging Face cache with `@huggingface/hub`'s own
 * `modelInfo` / `listFiles` / `downloadFileToCacheDir`.
 *
 * Atomicity: the library streams each file into `blobs/<etag>.incomplete` and renames it to
 * `blobs/<etag>` only once the body has fully arrived, then symlinks `snapshots/<commit>/<file>` to
 * it. On top of that we check every file's size against the listing (a short body is deleted, never
 * kept as a blob) and write `refs/<revision>` only after the whole snapshot is in place.
 */
import { rm, realpath, readFile, stat } from 'node:fs/promises';
import {
  HubApiError,
  downloadFileToCacheDir,
  listFiles,
  modelInfo,
  type ListFileEntry,
} from '@huggingface/hub';
import { EdgeqError, HubError } from '../core/errors.js';
import { snapshotDir, snapshotProblem, writeRef } from './hub-cache.js';
import {
  CONFIG_FILE,
  MODEL_METADATA_FILES,
  SAFETENSORS_INDEX,
  describeOtherWeights,
  isSafetensors,
  selectWeightFiles,
  shardsFromIndex,
} from './hub-files.js';
import { COMMIT_HASH_RE } from './hub-spec.js';

export interface HubProgress {
  file: string;
  bytes: number;
  totalBytes?: number;
  fileIndex: number;
  fileCount: number;
  /** Bytes of all planned files done so far (cached files count as done). */
  overallBytes?: number;
  overallTotalBytes?: number;
}

export interface HubDownloadParams {
  repo: string;
  revision: string;
  cacheDir: string;
  storageFolder: string;
  endpoint: string;
  token?: string;
  fetch: typeof fetch;
  onProgress?: (p: HubProgress) => void;
  /** Per-request timeout for the small JSON API calls (not for file bodies). */
  apiTimeoutMs?: number;
}

export interface HubDownloadResult {
  commit: string;
  dir: string;
  /** Files whose bytes actually came over the network (0 when everything was already cached). */
  downloadedFiles: number;
}

/** What the instrumented fetch saw; used to tell "hub unreachable" from "hub said no". */
export interface NetState {
  /** At least one HTTP response (any status) arrived. */
  responded: boolean;
  /** The last transport-level failure (connect refused, DNS, reset, timeout, truncated body). */
  networkError?: unknown;
}

interface CurrentFile {
  onBytes: (n: number) => void;
  fetchedBody: boolean;
}

function hasRangeHeader(init: RequestInit | undefined): boolean {
  return init?.headers !== undefined && new Headers(init.headers).has('range');
}

/**
 * Wrap fetch to (a) record transport failures, (b) bound API calls with a timeout and (c) count the
 * body bytes of the full-file GET (the only GET without a Range header outside /api/) for progress.
 */
function instrumentFetch(
  base: typeof fetch,
  state: NetState,
  current: () => CurrentFile | undefined,
  apiTimeoutMs: number,
): typeof fetch {
  return async (input, init) => {
    const url = new URL(input instanceof Request ? input.url : input.toString());
    const isApi = url.pathname.startsWith('/api/');
    const signal = isApi && !init?.signal ? AbortSignal.timeout(apiTimeoutMs) : init?.signal;
    let res: Response;
    try {
      res = await base(input, { ...init, signal });
    } catch (err) {
      state.networkError = err;
      throw err;
    }
    state.responded = true;
    const file = current();
    const method = (init?.method ?? 'GET').toUpperCase();
    if (!file || isApi || method !== 'GET' || hasRangeHeader(init) || !res.ok || !res.body) return res;
    file.fetchedBody = true;
    const reader = res.body.getReader();
    const body = new ReadableStream<Uint8Array>({
      async pull(controller) {
        try {
          const { done, value } = await reader.read();
          if (done) {
            controller.close();
            return;
          }
          file.onBytes(value.byteLength);
          controller.enqueue(value);
        } catch (err) {
          state.networkError = err;
          controller.error(err);
        }
      },
      cancel(reason) {
        return reader.cancel(reason);
      },
    });
    const wrapped = new Response(body, { status: res.status, statusText: res.statusText, headers: res.headers });
    Object.defineProperty(wrapped, 'url', { value: res.url });
    return wrapped;
  };
}

/**
 * The library logs `Downloading <file> to <blob>.incomplete` with console.debug for every file,
 * which would tear through the CLI's spinner and pollute stdout. Drop exactly that line while a
 * download runs; every other console.debug call passes through untouched.
 */
let quietDepth = 0;
let savedDebug: typeof console.debug | undefined;
async function withoutLibraryNoise<T>(fn: () => Promise<T>): Promise<T> {
  if (quietDepth++ === 0) {
    const original = console.debug;
    savedDebug = original;
    console.debug = (...args: unknown[]) => {
      if (typeof args[0] === 'string' && /^Downloading .+ to .+\.incomplete$/s.test(args[0])) return;
      original.apply(console, args);
    };
  }
  try {
    return await fn();
  } finally {
    if (--quietDepth === 0 && savedDebug) {
      console.debug = savedDebug;
      savedDebug = undefined;
    }
  }
}

function expectedSize(entry: ListFileEntry): number {
  return entry.lfs?.size ?? entry.size;
}

/** Download the needed files of `repo@revision`; throws the library's errors untranslated. */
export async function downloadModelSnapshot(p: HubDownloadParams, state: NetState): Promise<HubDownloadResult> {
  let current: CurrentFile | undefined;
  const fetchFn = instrumentFetch(p.fetch, state, () => current, p.apiTimeoutMs ?? 30_000);
  const common = {
    repo: p.repo,
    hubUrl: p.endpoint,
    fetch: fetchFn,
    ...(p.token ? { accessToken: p.token } : {}),
  };

  const info = await modelInfo({ ...common, name: p.repo, revision: p.revision, additionalFields: ['sha'] });
  const commit = (info as { sha?: unknown }).sha;
  if (typeof commit !== 'string' || !COMMIT_HASH_RE.test(commit)) {
    throw new HubError('E_HUB_BAD_RESPONSE', `the hub returned no commit id for ${p.repo}@${p.revision}`, `check that ${p.endpoint} is a Hugging Face hub endpoint`);
  }

  const entries = new Map<string, ListFileEntry>();
  for await (const entry of listFiles({ ...common, revision: commit, recursive: false })) {
    if (entry.type === 'file' && !entry.path.includes('/')) entries.set(entry.path, entry);
  }
  const names = [...entries.keys()];
  const where = `${p.repo}@${p.revision} (commit ${commit.slice(0, 12)})`;
  if (!entries.has(CONFIG_FILE)) {
    throw new HubError('E_HUB_NO_CONFIG', `${where} has no ${CONFIG_FILE} at its root`, 'edgeq needs a transformers-style repo (config.json + *.safetensors)');
  }
  if (!names.some(isSafetensors)) {
    throw new HubError(
      'E_HUB_NO_SAFETENSORS',
      `${where} has no *.safetensors weights${describeOtherWeights(names)}`,
      'edgeq reads safetensors only: pick a revision/repo that has them, or convert the checkpoint and pass its local folder',
    );
  }

  const download = async (file: string): Promise<string> => {
    const params = { ...common, path: file, revision: commit, cacheDir: p.cacheDir, xet: false as const };
    // `xet: false` (forwarded to downloadFile): plain HTTP bodies, so byte progress is exact.
    const pointer = await downloadFileToCacheDir(params);
    const entry = entries.get(file);
    const size = (await stat(pointer)).size;
    if (entry && size !== expectedSize(entry)) {
      await rm(await realpath(pointer), { force: true });
      await rm(pointer, { force: true });
      throw new HubError(
        'E_HUB_DOWNLOAD_INCOMPLETE',
        `${file} from ${where}: got ${size} bytes, expected ${expectedSize(entry)}; the partial file was discarded`,
        'run the command again',
      );
    }
    return pointer;
  };

  return withoutLibraryNoise(async () => {
    let shards: string[] | undefined;
    if (entries.has(SAFETENSORS_INDEX)) {
      const indexPath = await download(SAFETENSORS_INDEX);
      shards = shardsFromIndex(JSON.parse(await readFile(indexPath, 'utf8')), `${p.repo}/${SAFETENSORS_INDEX}`);
      const absent = shards.filter((s) => !entries.has(s));
      if (absent.length > 0) {
        throw new HubError('E_HUB_MISSING_SHARD', `${where}: ${SAFETENSORS_INDEX} lists ${absent.join(', ')}, which the repo does not have`, 'the repository is incomplete; pick another revision');
      }
    }
    const plan = [
      ...MODEL_METADATA_FILES.filter((f) => entries.has(f)),
      ...(shards ? [SAFETENSORS_INDEX] : []),
      ...selectWeightFiles(names, shards),
    ];
    const overallTotalBytes = plan.reduce((sum, f) => sum + expectedSize(entries.get(f)!), 0);
    let overallDone = 0;
    let downloadedFiles = 0;
    for (const [fileIndex, file] of plan.entries()) {
      const totalBytes = expectedSize(entries.get(file)!);
      let bytes = 0;
      let lastReport = 0;
      const report = (): void =>
        p.onProgress?.({ file, bytes, totalBytes, fileIndex, fileCount: plan.length, overallBytes: overallDone + bytes, overallTotalBytes });
      const cur: CurrentFile = {
        fetchedBody: false,
        onBytes: (n) => {
          bytes += n;
          const now = Date.now();
          if (now - lastReport >= 100) {
            lastReport = now;
            report();
          }
        },
      };
      report();
      current = cur;
      try {
        await download(file);
      } finally {
        current = undefined;
      }
      if (cur.fetchedBody) downloadedFiles++;
      bytes = totalBytes;
      report();
      overallDone += totalBytes;
    }

    const dir = snapshotDir(p.storageFolder, commit);
    const problem = await snapshotProblem(dir);
    if (problem) {
      throw new HubError('E_HUB_DOWNLOAD_INCOMPLETE', `downloaded snapshot of ${where} is unusable: ${problem}`, 'run the command again');
    }
    await writeRef(p.storageFolder, p.revision, commit);
    return { commit, dir, downloadedFiles };
  });
}

/** True for failures where the hub could not be reached at all (so the cache may stand in). */
export function isUnreachable(err: unknown, state: NetState): boolean {
  return !state.responded && state.networkError !== undefined && !(err instanceof EdgeqError);
}

/** Translate a library/network failure into a HubError with a hint. */
export function toHubError(err: unknown, ctx: { repo: string; revision: string; endpoint: string; token?: string }, state: NetState): EdgeqError {
  if (err instanceof EdgeqError) return err;
  const id = `${ctx.repo}@${ctx.revision}`;
  if (err instanceof HubApiError) {
    const detail = err.message.split('. URL:')[0];
    switch (err.statusCode) {
      case 401:
        return ctx.token
          ? new HubError('E_HUB_AUTH', `the hub rejected the token for ${ctx.repo} (HTTP 401: ${detail})`, 'check that HF_TOKEN (or --token) is a valid token with read access to this repo')
          : new HubError('E_HUB_AUTH', `${ctx.repo} needs authentication or does not exist (HTTP 401: ${detail})`, 'if the repo is private or gated, set HF_TOKEN to a read token from https://huggingface.co/settings/tokens');
      case 403:
        return new HubError('E_HUB_FORBIDDEN', `access to ${ctx.repo} is restricted (HTTP 403: ${detail})`, 'for gated models, accept the license on the model page with the account whose token is in HF_TOKEN');
      case 404:
        return /revision|invalid rev/i.test(detail)
          ? new HubError('E_HUB_REVISION_NOT_FOUND', `revision '${ctx.revision}' of ${ctx.repo} not found on ${ctx.endpoint}`, 'check the branch, tag or commit after "@" (default: main)')
          : new HubError('E_HUB_NOT_FOUND', `repository ${ctx.repo} not found on ${ctx.endpoint}`, 'check the org/name spelling; for a private repo set HF_TOKEN; for a local folder pass a path such as ./name');
      default:
        return new HubError('E_HUB_HTTP', `hub request for ${id} failed (HTTP ${err.statusCode}: ${detail})`, 'try again later, or set HF_ENDPOINT to a working mirror');
    }
  }
  const message = err instanceof Error ? err.message : String(err);
  if (err instanceof TypeError && /access token must start with 'hf_'/.test(message)) {
    return new HubError('E_HUB_BAD_TOKEN', 'the Hugging Face token is malformed (it must start with "hf_")', 'set HF_TOKEN (or --token) to a token from https://huggingface.co/settings/tokens');
  }
  if (state.networkError !== undefined) {
    const cause = state.networkError instanceof Error ? (state.networkError.cause as Error | undefined)?.message ?? state.networkError.message : String(state.networkError);
    return new HubError('E_HUB_DOWNLOAD_INTERRUPTED', `download of ${id} from ${ctx.endpoint} was interrupted: ${cause}`, 'run the command again; partial files are discarded, never used');
  }
  return new HubError('E_HUB_DOWNLOAD', `could not download ${id} from ${ctx.endpoint}: ${message}`, 'try again, or download the model elsewhere and pass its local folder to --model');
}
