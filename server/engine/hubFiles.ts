import { ModelNotFoundError } from './modelErrors.js';

const HUB_TIMEOUT_MS = 15_000;
/** Redirects followed to find what a download will be (the hub sends one, to its storage). */
const MAX_HOPS = 5;

/** A file in a hub repository: its size, and the sha256 of its content when the hub keeps it in LFS. */
export type HubFile = { path: string; sizeBytes: number; sha256?: string };

/** What a download must be, as its server announces it before the bytes. */
export type AnnouncedFile = { url: string; sizeBytes?: number; sha256?: string };

type TreeEntry = { type: string; path: string; size: number; lfs?: { oid: string; size: number } };

/** `owner/repo` of `hf:owner/repo` (no file, no tag), else undefined. */
export function wholeRepoOf(model: string): string | undefined {
  return /^(?:hf|huggingface):(?:\/\/)?([\w.-]+\/[\w.-]+)$/.exec(model)?.[1];
}

/** The repository's files, with sizes and LFS sha256s (the hub's tree API, as huggingface_hub lists them). */
export async function listHubFiles(hfEndpoint: string, repo: string): Promise<HubFile[]> {
  const url = new URL(`api/models/${repo}/tree/main?recursive=true`, hubBase(hfEndpoint));
  const response = await fetch(url, { signal: AbortSignal.timeout(HUB_TIMEOUT_MS) });
  if (!response.ok) {
    throw new ModelNotFoundError(
      `Cannot list the files of "${repo}" at ${url.origin}: HTTP ${response.status}. ` +
        'Check the repository name, or name a file in it (hf:owner/repo/file.gguf).',
    );
  }
  const entries = (await response.json()) as TreeEntry[];
  return entries
    .filter((entry) => entry.type === 'file')
    .map((entry) => ({
      path: entry.path,
      sizeBytes: entry.lfs?.size ?? entry.size,
      ...(entry.lfs === undefined ? {} : { sha256: entry.lfs.oid }),
    }));
}

/**
 * The URL a remote model's file is fetched from: a URL as given; `hf:owner/repo/file#branch` on
 * the hub's resolve route; `hf:owner/repo:tag` through the hub's manifest, which names the file.
 */
export async function fileUrlOf(model: string, hfEndpoint: string): Promise<string> {
  if (/^https?:\/\//.test(model)) return model;
  const spec = model.replace(/^(hf|huggingface):(\/\/)?/, '');
  const [path = '', branch = 'main'] = spec.split('#', 2);
  const [owner, repo, ...file] = path.split('/');
  if (file.length > 0) return resolveUrl(hfEndpoint, `${owner}/${repo}`, branch, file.join('/'));
  const [repoName = '', tag = 'latest'] = (repo ?? '').split(':', 2);
  const manifest = new URL(`v2/${owner}/${repoName}/manifests/${tag}`, hubBase(hfEndpoint));
  // The hub names the GGUF file of a tag only to llama.cpp's user agent.
  const response = await fetch(manifest, {
    headers: { 'user-agent': 'llama-cpp' },
    signal: AbortSignal.timeout(HUB_TIMEOUT_MS),
  });
  const body = response.ok ? ((await response.json()) as { ggufFile?: { rfilename?: string } }) : {};
  const rfilename = body.ggufFile?.rfilename;
  if (rfilename === undefined) throw new ModelNotFoundError(`The hub names no file for "${model}" (${manifest}).`);
  return resolveUrl(hfEndpoint, `${owner}/${repoName}`, branch, rfilename);
}

/**
 * The size and sha256 a download must have: the hub announces both on its resolve route's redirect
 * (`x-linked-size`, `x-linked-etag`); another server, its `content-length`, and an `etag` only when
 * it is a sha256 (64 hex digits).
 */
export async function announcedFile(url: string): Promise<AnnouncedFile> {
  let at = url;
  for (let hop = 0; hop < MAX_HOPS; hop++) {
    const response = await fetch(at, {
      method: 'HEAD',
      redirect: 'manual',
      signal: AbortSignal.timeout(HUB_TIMEOUT_MS),
    });
    const linkedSize = response.headers.get('x-linked-size');
    const etag = sha256Of(response.headers.get('x-linked-etag') ?? response.headers.get('etag'));
    const location = response.headers.get('location');
    if (linkedSize !== null || location === null || !isRedirect(response.status)) {
      const size = linkedSize ?? (response.ok ? response.headers.get('content-length') : null);
      return {
        url,
        ...(size === null ? {} : { sizeBytes: Number(size) }),
        ...(etag === undefined ? {} : { sha256: etag }),
      };
    }
    at = new URL(location, at).href;
  }
  return { url };
}

function resolveUrl(hfEndpoint: string, repo: string, branch: string, file: string): string {
  const path = file.split('/').map(encodeURIComponent).join('/');
  return new URL(`${repo}/resolve/${encodeURIComponent(branch)}/${path}`, hubBase(hfEndpoint)).href;
}

/** The endpoint as a base URL: a mirror under a path keeps its path. */
function hubBase(hfEndpoint: string): string {
  return hfEndpoint.endsWith('/') ? hfEndpoint : `${hfEndpoint}/`;
}

function sha256Of(etag: string | null): string | undefined {
  const value = etag?.replace(/^W\//, '').replace(/"/g, '').toLowerCase();
  return value !== undefined && /^[0-9a-f]{64}$/.test(value) ? value : undefined;
}

function isRedirect(status: number): boolean {
  return status >= 300 && status < 400;
}
