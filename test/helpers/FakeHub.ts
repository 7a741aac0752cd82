import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export type HubRequest = { method: string; path: string; range: string | undefined };

/**
 * A fault for the next downloads of one file: `times` ranged transfers stop after `afterBytes` bytes
 * and, by `ending`, drop the connection (a flaky network) or stall it, open and silent (a hung one).
 */
export type Cut = { afterBytes: number; times: number; ending: 'drop' | 'stall' };

/**
 * Bytes served that are not the file announced (a broken mirror or storage): `truncated`, the first
 * half, sent whole with its own length; `corrupted`, one byte changed, at the same length.
 */
export type Damage = 'truncated' | 'corrupted';

/** How a file is listed: `listedSize` stands for a real quantisation's size while the tiny model is served. */
export type FileOptions = { listedSize?: number };

/**
 * A local stand-in for the Hugging Face hub, serving the routes node-llama-cpp uses (`HF_ENDPOINT`
 * points it here): `/{owner}/{repo}/resolve/{branch}/{file}` answers like the hub does for large
 * files, with a redirect to a content URL (`x-linked-size` and `x-linked-etag` carry the size and
 * sha256), which serves the bytes with ranges; `/v2/{owner}/{repo}/manifests/{tag}` names the file
 * a quantisation tag resolves to; `/api/models/{owner}/{repo}` lists the files with their sizes, and
 * `/api/models/{owner}/{repo}/tree/{revision}` with their LFS sha256s and sizes, as the hub does.
 * Every request is recorded, a download can be cut half-way and a file's bytes damaged on purpose.
 */
export class FakeHub {
  readonly requests: HubRequest[] = [];
  private readonly files = new Map<string, Buffer>();
  private readonly listedSizes = new Map<string, number>();
  private readonly damaged = new Map<string, Buffer>();
  private readonly cuts = new Map<string, Cut & { reached: () => void }>();

  private constructor(
    private readonly server: Server,
    readonly url: string,
  ) {}

  static async start(): Promise<FakeHub> {
    const server = createServer();
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const { port } = server.address() as AddressInfo;
    const hub = new FakeHub(server, `http://127.0.0.1:${port}`);
    server.on('request', (request, response) => hub.handle(request, response));
    return hub;
  }

  /** Serves `bytes` as `owner/repo/file`. */
  addFile(repoPath: string, bytes: Buffer, options: FileOptions = {}): void {
    this.files.set(repoPath, bytes);
    if (options.listedSize !== undefined) this.listedSizes.set(repoPath, options.listedSize);
  }

  /** From now on serves damaged bytes for `repoPath`, while still announcing the right size and sha256. */
  damage(repoPath: string, how: Damage): void {
    const bytes = this.files.get(repoPath);
    if (bytes === undefined) throw new Error(`No file ${repoPath}`);
    const damaged = how === 'truncated' ? Buffer.from(bytes.subarray(0, bytes.length >> 1)) : Buffer.from(bytes);
    if (how === 'corrupted') damaged[damaged.length >> 1] = (damaged[damaged.length >> 1] ?? 0) ^ 0xff;
    this.damaged.set(repoPath, damaged);
  }

  /** Serves `repoPath`'s own bytes again. */
  repair(repoPath: string): void {
    this.damaged.delete(repoPath);
  }

  /** Cuts the next downloads of `repoPath`; resolves once the first cut has happened. */
  cutDownloads(repoPath: string, cut: Cut): Promise<void> {
    return new Promise((resolve) => this.cuts.set(repoPath, { ...cut, reached: resolve }));
  }

  /** The requests for a file's bytes that carried any (GET on its content URL). */
  downloadsOf(repoPath: string): HubRequest[] {
    return this.requests.filter((r) => r.method === 'GET' && r.path === `/cdn/${repoPath}`);
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    this.server.close();
    await once(this.server, 'close');
  }

  private handle(request: IncomingMessage, response: ServerResponse): void {
    const { pathname } = new URL(request.url ?? '/', this.url);
    const path = decodeURIComponent(pathname);
    this.requests.push({ method: request.method ?? 'GET', path, range: request.headers.range });
    const resolve = /^\/([^/]+\/[^/]+)\/resolve\/[^/]+\/(.+)$/.exec(path);
    const manifest = /^\/v2\/([^/]+\/[^/]+)\/manifests\/([^/]+)$/.exec(path);
    const listing = /^\/api\/models\/([^/]+\/[^/]+)$/.exec(path);
    const tree = /^\/api\/models\/([^/]+\/[^/]+)\/tree\/[^/]+$/.exec(path);
    if (resolve?.[1] !== undefined && resolve[2] !== undefined) this.redirect(`${resolve[1]}/${resolve[2]}`, response);
    else if (path.startsWith('/cdn/')) this.serveBytes(path.slice('/cdn/'.length), request, response);
    else if (manifest?.[1] !== undefined && manifest[2] !== undefined)
      this.manifest(manifest[1], manifest[2], response);
    else if (listing?.[1] !== undefined) this.listing(listing[1], response);
    else if (tree?.[1] !== undefined) this.tree(tree[1], response);
    else if (path === '/') response.end('fake hub');
    else this.notFound(response);
  }

  private redirect(repoPath: string, response: ServerResponse): void {
    const bytes = this.files.get(repoPath);
    if (bytes === undefined) return void this.notFound(response);
    response.writeHead(302, {
      location: `/cdn/${repoPath}`,
      'x-linked-size': String(bytes.length),
      'x-linked-etag': `"${sha256(bytes)}"`,
      etag: `"${sha256(bytes)}"`,
    });
    response.end();
  }

  private serveBytes(repoPath: string, request: IncomingMessage, response: ServerResponse): void {
    const bytes = this.damaged.get(repoPath) ?? this.files.get(repoPath);
    if (bytes === undefined) return void this.notFound(response);
    const range = /^bytes=(\d+)-(\d*)$/.exec(request.headers.range ?? '');
    const start = range ? Number(range[1]) : 0;
    // A range past the end is cut at the end, as HTTP servers do (GGUF readers ask for a fixed size).
    const end = range?.[2] ? Math.min(Number(range[2]) + 1, bytes.length) : bytes.length;
    const headers = {
      'accept-ranges': 'bytes',
      'content-type': 'application/octet-stream',
      etag: `"${sha256(bytes)}"`,
      'content-length': String(end - start),
      ...(range ? { 'content-range': `bytes ${start}-${end - 1}/${bytes.length}` } : {}),
    };
    response.writeHead(range ? 206 : 200, headers);
    if (request.method === 'HEAD') return void response.end();
    const cut = this.cuts.get(repoPath);
    // node-llama-cpp's downloader (ipull) first looks at the file with a plain GET it drops after the
    // headers, then downloads with ranges: the ranged transfers are the ones to cut.
    if (cut !== undefined && cut.times > 0 && range && end - start > cut.afterBytes) {
      cut.times--;
      response.write(bytes.subarray(start, start + cut.afterBytes), () => {
        if (cut.ending === 'drop') response.socket?.destroy();
        cut.reached();
      });
      return;
    }
    response.end(bytes.subarray(start, end));
  }

  private manifest(repo: string, tag: string, response: ServerResponse): void {
    const wanted = tag.toLowerCase() === 'latest' ? '' : tag.toLowerCase();
    const file = this.filesOf(repo).find(([name]) => name.toLowerCase().includes(wanted));
    if (file === undefined) return void this.notFound(response);
    const [rfilename, bytes] = file;
    sendJson(response, { ggufFile: { rfilename, size: bytes.length } });
  }

  private listing(repo: string, response: ServerResponse): void {
    const siblings = this.filesOf(repo).map(([rfilename, bytes]) => ({
      rfilename,
      size: this.sizeOf(repo, rfilename, bytes),
    }));
    if (siblings.length === 0) return void this.notFound(response);
    sendJson(response, { id: repo, siblings });
  }

  /** The hub's tree listing: every file with its size and, for LFS files (all of these), their sha256. */
  private tree(repo: string, response: ServerResponse): void {
    const entries = this.filesOf(repo).map(([path, bytes]) => {
      const size = this.sizeOf(repo, path, bytes);
      return { type: 'file', path, size, oid: sha1(bytes), lfs: { oid: sha256(bytes), size, pointerSize: 134 } };
    });
    if (entries.length === 0) return void this.notFound(response);
    sendJson(response, entries);
  }

  private sizeOf(repo: string, file: string, bytes: Buffer): number {
    return this.listedSizes.get(`${repo}/${file}`) ?? bytes.length;
  }

  private filesOf(repo: string): [string, Buffer][] {
    return [...this.files]
      .filter(([path]) => path.startsWith(`${repo}/`))
      .map(([path, bytes]) => [path.slice(repo.length + 1), bytes]);
  }

  private notFound(response: ServerResponse): void {
    response.writeHead(404, { 'content-type': 'application/json' });
    response.end(JSON.stringify({ error: 'Entry not found' }));
  }
}

function sendJson(response: ServerResponse, body: unknown): void {
  response.writeHead(200, { 'content-type': 'application/json' });
  response.end(JSON.stringify(body));
}

function sha1(bytes: Buffer): string {
  return createHash('sha1').update(bytes).digest('hex');
}

export function sha256(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}
