import { existsSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { resolveModelFile } from 'node-llama-cpp';

export type ModelSource = { modelPath?: string; model: string; modelCacheDir: string; hfEndpoint: string };

/** The model could not be found or fetched; the message is meant for the person starting the server. */
export class ModelNotFoundError extends Error {
  override name = 'ModelNotFoundError';
}

const REACHABILITY_TIMEOUT_MS = 5_000;

/**
 * Returns a local .gguf path: `modelPath` when given, else `model` from the cache, else `model`
 * downloaded with a progress bar. Offline, it fails within seconds instead of hanging.
 */
export async function locateModel(source: ModelSource): Promise<string> {
  if (source.modelPath !== undefined) return checkLocalFile(source.modelPath);
  if (!isRemote(source.model)) return checkLocalFile(source.model);
  const cached = await findCached(source);
  if (cached !== undefined) return cached;
  await assertReachable(source);
  return resolveModelFile(source.model, { ...downloadOptions(source), cli: true });
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
