/**
 * A real HTTP server on 127.0.0.1 that speaks the subset of the Hugging Face hub protocol that
 * `@huggingface/hub` uses to download a model into the cache:
 *
 *   GET  /api/models/{org}/{name}/revision/{rev}?expand=…         → model info incl. `sha`
 *   GET  /api/models/{org}/{name}/tree/{rev}[/{dir}]?recursive=…  → file listing (paged via `Link`)
 *   POST /api/models/{org}/{name}/paths-info/{rev}                → per-path oid / lfs / lastCommit
 *   GET  /{org}/{name}/resolve/{rev}/{path}  (Range: bytes=0-0 probe, then a full GET) — LFS files
 *        302 to /cdn/{sha256} like the real hub's CDN redirect; small files are served directly
 *   GET  /cdn/{sha256}
 *
 * Revisions may be branch/tag names or the commit id the server derives from their content. Repos
 * can require `Authorization: Bearer <token>`; `faults.truncate` makes full GETs of a file send half
 * the body and then drop the connection. Every request is recorded in `requests`.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';

/** File contents: bytes, or an absolute path read once at start-up. */
export type FakeFile = Uint8Array | string;

export interface FakeRepoSpec {
  /** revision name → (repo path → content). */
  revisions: Record<string, Record<string, FakeFile>>;
  /** When set, every request for this repo must carry `Authorization: Bearer <token>`. */
  token?: string;
}

export interface FakeHubOptions {
  repos: Record<string, FakeRepoSpec>;
  /** Tree listing page size (to exercise `Link: rel="next"` paging). Default 1000. */
  pageSize?: number;
}

export interface RecordedRequest {
  method: string;
  path: string;
  authorization?: string;
  range?: string;
}

export interface FakeHub {
  url: string;
  requests: RecordedRequest[];
  faults: { truncate: Set<string> };
  /** The commit id the server reports for `repo@revision`. */
  commitOf(repo: string, revision: string): string;
  close(): Promise<void>;
}

interface FileRec {
  path: string;
  data: Buffer;
  gitOid: string;
  sha256?: string; // set for LFS files
}

interface RevRec {
  commit: string;
  files: Map<string, FileRec>;
}

const LFS_RE = /\.(safetensors|bin|pt|pth|gguf|onnx|model|msgpack|h5)$/;

function gitBlobOid(data: Buffer): string {
  return createHash('sha1').update(`blob ${data.length}\0`).update(data).digest('hex');
}

function buildRevisions(repo: string, spec: FakeRepoSpec): Map<string, RevRec> {
  const out = new Map<string, RevRec>();
  for (const [rev, files] of Object.entries(spec.revisions)) {
    const recs = new Map<string, FileRec>();
    const h = createHash('sha1').update(`${repo}\0${rev}\0`);
    for (const [p, content] of Object.entries(files).sort(([a], [b]) => a.localeCompare(b))) {
      const data = typeof content === 'string' ? readFileSync(content) : Buffer.from(content);
      const rec: FileRec = { path: p, data, gitOid: gitBlobOid(data) };
      if (LFS_RE.test(p)) rec.sha256 = createHash('sha256').update(data).digest('hex');
      recs.set(p, rec);
      h.update(`${p}\0${rec.gitOid}\0`);
    }
    const rr: RevRec = { commit: h.digest('hex'), files: recs };
    out.set(rev, rr);
    out.set(rr.commit, rr);
  }
  return out;
}

function sendJson(res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

function directoriesOf(files: Iterable<string>): Set<string> {
  const dirs = new Set<string>();
  for (const f of files) {
    const parts = f.split('/');
    for (let i = 1; i < parts.length; i++) dirs.add(parts.slice(0, i).join('/'));
  }
  return dirs;
}

function treeEntry(f: FileRec): Record<string, unknown> {
  return {
    type: 'file',
    oid: f.sha256 ? gitBlobOid(Buffer.from(`version https://git-lfs.github.com/spec/v1\noid sha256:${f.sha256}\nsize ${f.data.length}\n`)) : f.gitOid,
    size: f.data.length,
    path: f.path,
    ...(f.sha256 ? { lfs: { oid: f.sha256, size: f.data.length, pointerSize: 134 } } : {}),
  };
}

export async function startFakeHub(options: FakeHubOptions): Promise<FakeHub> {
  const repos = new Map<string, { spec: FakeRepoSpec; revs: Map<string, RevRec> }>();
  for (const [name, spec] of Object.entries(options.repos)) repos.set(name, { spec, revs: buildRevisions(name, spec) });
  const byLfsOid = new Map<string, FileRec>();
  for (const { revs } of repos.values()) for (const rr of revs.values()) for (const f of rr.files.values()) if (f.sha256) byLfsOid.set(f.sha256, f);

  const requests: RecordedRequest[] = [];
  const faults = { truncate: new Set<string>() };
  const pageSize = options.pageSize ?? 1000;
  let base = '';

  /** Serve a file body honouring a single `bytes=a-b` range; optionally truncate full GETs. */
  function serveBody(req: http.IncomingMessage, res: http.ServerResponse, f: FileRec, headers: Record<string, string>): void {
    const size = f.data.length;
    const common = { 'Accept-Ranges': 'bytes', 'Content-Type': 'application/octet-stream', ...headers };
    const m = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
    if (m) {
      const start = Number(m[1]);
      const end = Math.min(m[2] ? Number(m[2]) : size - 1, size - 1);
      if (start >= size || end < start) {
        res.writeHead(416, { 'Content-Range': `bytes */${size}` });
        res.end();
        return;
      }
      res.writeHead(206, { ...common, 'Content-Range': `bytes ${start}-${end}/${size}`, 'Content-Length': end - start + 1 });
      res.end(req.method === 'HEAD' ? undefined : f.data.subarray(start, end + 1));
      return;
    }
    res.writeHead(200, { ...common, 'Content-Length': size });
    if (req.method === 'HEAD') {
      res.end();
    } else if (faults.truncate.has(f.path)) {
      res.write(f.data.subarray(0, Math.floor(size / 2)), () => setTimeout(() => res.socket?.destroy(), 20));
    } else {
      res.end(f.data);
    }
  }

  function handle(req: http.IncomingMessage, res: http.ServerResponse, body: string): void {
    const url = new URL(req.url ?? '/', base);
    const method = req.method ?? 'GET';
    requests.push({ method, path: url.pathname + url.search, authorization: req.headers.authorization, range: req.headers.range });

    const cdn = /^\/cdn\/([0-9a-f]{64})$/.exec(url.pathname);
    if (cdn) {
      const f = byLfsOid.get(cdn[1]!);
      if (!f) return sendJson(res, 404, { error: 'Not found' });
      return serveBody(req, res, f, { ETag: `"${f.sha256}"` });
    }

    const api = /^\/api\/models\/([^/]+\/[^/]+)\/(revision|tree|paths-info)\/([^/]+)(?:\/(.*))?$/.exec(url.pathname);
    const resolve = api ? null : /^\/([^/]+\/[^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(url.pathname);
    const m = api ?? resolve;
    if (!m) return sendJson(res, 404, { error: 'Not found' });
    const repoName = m[1]!;
    const repo = repos.get(repoName);
    if (!repo) return sendJson(res, 404, { error: 'Repository not found' }, { 'X-Error-Code': 'RepoNotFound' });
    if (repo.spec.token !== undefined && req.headers.authorization !== `Bearer ${repo.spec.token}`) {
      return sendJson(res, 401, { error: 'Invalid username or password.' }, { 'X-Error-Code': 'RepoNotFound' });
    }
    const revName = decodeURIComponent(api ? m[3]! : m[2]!);
    const rev = repo.revs.get(revName);
    if (!rev) return sendJson(res, 404, { error: `Invalid rev id: ${revName}` }, { 'X-Error-Code': 'RevisionNotFound' });

    if (api?.[2] === 'revision') {
      return sendJson(res, 200, {
        _id: `id-${repoName}`,
        id: repoName,
        modelId: repoName,
        sha: rev.commit,
        private: repo.spec.token !== undefined,
        gated: false,
        downloads: 0,
        likes: 0,
        lastModified: '2024-01-01T00:00:00.000Z',
        pipeline_tag: 'text-generation',
        siblings: [...rev.files.keys()].map((rfilename) => ({ rfilename })),
      });
    }
    if (api?.[2] === 'tree') {
      const dir = api[4] ? decodeURIComponent(api[4]).replace(/\/$/, '') : '';
      const recursive = url.searchParams.get('recursive') === 'true';
      const inScope = (p: string): boolean => {
        const rel = dir ? (p.startsWith(`${dir}/`) ? p.slice(dir.length + 1) : undefined) : p;
        return rel !== undefined && (recursive || !rel.includes('/'));
      };
      const dirs = [...directoriesOf(rev.files.keys())].filter(inScope).map((p) => ({ type: 'directory', oid: gitBlobOid(Buffer.from(p)), size: 0, path: p }));
      const all = [...dirs, ...[...rev.files.values()].filter((f) => inScope(f.path)).map(treeEntry)];
      const cursor = Number(url.searchParams.get('cursor') ?? '0');
      const page = all.slice(cursor, cursor + pageSize);
      const headers: Record<string, string> = {};
      if (cursor + pageSize < all.length) {
        const next = new URL(url.href);
        next.searchParams.set('cursor', String(cursor + pageSize));
        headers['Link'] = `<${next.href}>; rel="next"`;
      }
      return sendJson(res, 200, page, headers);
    }
    if (api?.[2] === 'paths-info') {
      if (method !== 'POST') return sendJson(res, 405, { error: 'Method not allowed' });
      const paths = (JSON.parse(body || '{}') as { paths?: string[] }).paths ?? [];
      const out = paths.flatMap((p) => {
        const f = rev.files.get(p);
        return f ? [{ ...treeEntry(f), lastCommit: { id: rev.commit, title: 'fixture', date: '2024-01-01T00:00:00.000Z' } }] : [];
      });
      return sendJson(res, 200, out);
    }

    // /{repo}/resolve/{rev}/{path}
    const filePath = decodeURIComponent(m[3]!);
    const f = rev.files.get(filePath);
    if (!f) return sendJson(res, 404, { error: 'Entry not found' }, { 'X-Error-Code': 'EntryNotFound' });
    const headers: Record<string, string> = { 'X-Repo-Commit': rev.commit, ETag: `"${f.gitOid}"` };
    if (f.sha256) {
      res.writeHead(302, {
        ...headers,
        'X-Linked-ETag': `"${f.sha256}"`,
        'X-Linked-Size': String(f.data.length),
        Location: `${base}/cdn/${f.sha256}`,
        'Content-Length': 0,
      });
      res.end();
      return;
    }
    serveBody(req, res, f, headers);
  }

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      try {
        handle(req, res, Buffer.concat(chunks).toString('utf8'));
      } catch (err) {
        if (!res.headersSent) sendJson(res, 500, { error: String(err) });
        else res.destroy();
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  return {
    url: base,
    requests,
    faults,
    commitOf(repo, revision) {
      const rr = repos.get(repo)?.revs.get(revision);
      if (!rr) throw new Error(`fake hub: no ${repo}@${revision}`);
      return rr.commit;
    },
    close() {
      return new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()));
        server.closeAllConnections();
      });
    },
  };
}
