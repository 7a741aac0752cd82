import { existsSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { resolveModelFile } from 'node-llama-cpp';

export type ModelSource = { modelPath?: string; model: string; modelCacheDir: string };

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
  await assertReachable(source.model);
  return resolveModelFile(source.model, { directory: source.modelCacheDir, cli: true });
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
    return await resolveModelFile(source.model, {
      directory: source.modelCacheDir,
      download: false,
      cli: false,
    });
  } catch {
    return undefined;
  }
}

async function assertReachable(uri: string): Promise<void> {
  const url = uri.startsWith('http') ? new URL(uri).origin : 'https://huggingface.co';
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
