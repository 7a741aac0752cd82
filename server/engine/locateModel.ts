import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { resolveModelFile } from 'node-llama-cpp';
import type { Logger } from '../log.js';
import { fetchModelFile } from './fetchModelFile.js';
import { wholeRepoOf } from './hubFiles.js';
import { ModelNotFoundError } from './modelErrors.js';
import { pickRepoQuantisation, type RepoPickSource } from './pickRepoQuantisation.js';

export { ModelNotFoundError } from './modelErrors.js';

export type ModelSource = RepoPickSource & { modelPath?: string; model: string; modelCacheDir: string };

const REACHABILITY_TIMEOUT_MS = 5_000;

/**
 * Returns a local .gguf path: `modelPath` when given, else `model` from the cache, else `model`
 * downloaded with a progress bar and checked against the size and sha256 its server announced.
 * `hf:owner/repo` names the largest quantisation in the repository that fits this machine's memory.
 * Offline, it fails within seconds instead of hanging.
 */
export async function locateModel(source: ModelSource, log?: Logger): Promise<string> {
  if (source.modelPath !== undefined) return checkLocalFile(source.modelPath);
  if (!isRemote(source.model)) return checkLocalFile(source.model);
  const repo = wholeRepoOf(source.model);
  if (repo !== undefined) {
    const offline = await assertReachable(source).then(
      () => undefined,
      (error: unknown) => error,
    );
    const before = offline === undefined ? undefined : chosenBefore(repo, source.modelCacheDir);
    if (before !== undefined) {
      log?.warn({ repo, path: before }, `the hub is not reachable: serving ${before}, chosen from ${repo} before`);
      return before;
    }
    if (offline !== undefined) throw offline;
  }
  const model = repo === undefined ? source.model : await pickRepoQuantisation(repo, source, log);
  const located = { ...source, model };
  const cached = await findCached(located);
  if (cached !== undefined) return cached;
  await assertReachable(located);
  return fetchModelFile(model, { ...downloadOptions(located), hfEndpoint: source.hfEndpoint, cli: true, log });
}

/**
 * Where and as what node-llama-cpp keeps the download: the hub is given explicitly, so that it
 * downloads from where the reachability check looked; a plain URL's file keeps its own name, since
 * node-llama-cpp cannot tell a plain URL's cached file without asking the network.
 */
function downloadOptions(source: ModelSource) {
  return {
    directory: source.modelCacheDir,
    endpoints: { huggingFace: source.hfEndpoint },
    fileName: plainUrlFileName(source),
  };
}

/** The file name of a URL that is not a hub file's (node-llama-cpp names those itself, as hf: URIs). */
function plainUrlFileName({ model, hfEndpoint }: ModelSource): string | undefined {
  if (!/^https?:\/\//.test(model)) return undefined;
  const url = new URL(model);
  const hubHosts = [new URL(hfEndpoint).hostname, 'huggingface.co', 'hf.co'];
  if (hubHosts.includes(url.hostname) && /^\/[^/]+\/[^/]+\/resolve\//.test(url.pathname)) return undefined;
  const name = decodeURIComponent(url.pathname.split('/').pop() ?? '').replace(/[\\/]/g, '_');
  return /\.gguf$/i.test(name) ? name : undefined;
}

/**
 * For `hf:owner/repo` offline: the quantisation of it downloaded before (the largest, if several), as
 * node-llama-cpp names an `hf:owner/repo/file` download. The load's memory check still applies.
 */
function chosenBefore(repo: string, cacheDir: string): string | undefined {
  const prefix = `hf_${repo.replace('/', '_')}_`;
  const names = existsSync(cacheDir) ? readdirSync(cacheDir) : [];
  return names
    .filter((name) => name.startsWith(prefix) && /\.gguf$/i.test(name) && !isLaterSplitPart(name))
    .map((name) => join(cacheDir, name))
    .sort((a, b) => statSync(b).size - statSync(a).size)[0];
}

/** A split model's second part or later: the model is loaded from its first. */
function isLaterSplitPart(name: string): boolean {
  const part = /-(\d{5})-of-\d{5}\.gguf$/i.exec(name)?.[1];
  return part !== undefined && part !== '00001';
}

function isRemote(uri: string): boolean {
  return /^(hf:|huggingface:|https?:\/\/)/.test(uri);
}

function checkLocalFile(path: string): string {
  const absolute = resolve(path);
  if (!existsSync(absolute) || !statSync(absolute).isFile()) {
    throw new ModelNotFoundError(
      `No model file at "${absolute}". Set MODEL_PATH to a local .gguf file ` +
        'or set MODEL to an hf: URI or URL to download one (unset both to serve the tiny model in models/).',
    );
  }
  return absolute;
}

async function findCached(source: ModelSource): Promise<string | undefined> {
  try {
    return await resolveModelFile(source.model, { ...downloadOptions(source), download: false, cli: false });
  } catch {
    return undefined;
  }
}

async function assertReachable({ model: uri, hfEndpoint }: ModelSource): Promise<void> {
  const url = new URL(uri.startsWith('http') ? uri : hfEndpoint).origin;
  try {
    await fetch(url, { method: 'HEAD', signal: AbortSignal.timeout(REACHABILITY_TIMEOUT_MS) });
  } catch (error) {
    const why = error instanceof Error ? (error.cause ?? error.message) : error;
    throw new ModelNotFoundError(
      `Cannot download the model "${uri}": ${url} is not reachable (${String(why)}). ` +
        'This machine looks offline. Set MODEL_PATH to a local .gguf file ' +
        '(unset MODEL and MODEL_PATH to serve the tiny model in models/), or connect and try again; ' +
        'a model downloaded once is reused from the cache without a network.',
    );
  }
}
