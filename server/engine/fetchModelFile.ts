import { readdir, rename, rmdir } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { type ResolveModelFileOptions, resolveModelFile } from 'node-llama-cpp';
import type { Logger } from '../log.js';
import { announcedFile, fileUrlOf } from './hubFiles.js';
import { verifyDownload } from './verifyDownload.js';

/** Where downloads are made, inside the cache: a file reaches the cache only whole and checked. */
export const STAGING_DIR = '.downloading';

export type FetchOptions = ResolveModelFileOptions & { directory: string; hfEndpoint: string; log?: Logger };

/**
 * Downloads a remote model with node-llama-cpp's downloader (progress bar, resume of its partial
 * file) into a staging folder, checks it against the size and sha256 its server announced, and only
 * then moves it into the cache, where the next start finds it. A cut download is never in the cache,
 * and a damaged one is deleted (DownloadMismatchError).
 */
export async function fetchModelFile(model: string, options: FetchOptions): Promise<string> {
  const { directory, hfEndpoint, log, ...rest } = options;
  const announced = await announcedFile(await fileUrlOf(model, hfEndpoint));
  const staging = join(directory, STAGING_DIR);
  const downloaded = await resolveModelFile(model, { ...rest, directory: staging });
  await verifyDownload(downloaded, announced);
  const parts = await splitPartsOf(downloaded);
  for (const part of parts) await rename(join(staging, part), join(directory, part));
  // Left when another download is under way (or a partial file from an earlier one): not an error.
  await rmdir(staging).catch(() => undefined);
  const path = join(directory, basename(downloaded));
  log?.info(
    { path, url: announced.url, bytes: announced.sizeBytes, sha256: announced.sha256 },
    'model downloaded and verified',
  );
  return path;
}

/** The file's name, or all parts of a split model (`name-00001-of-00003.gguf`) that sit beside it. */
async function splitPartsOf(path: string): Promise<string[]> {
  const name = basename(path);
  const split = /^(.*)-\d{5}-of-(\d{5})\.gguf$/i.exec(name);
  if (split === null) return [name];
  const [, stem, count] = split;
  const pattern = new RegExp(`^${escapeRegExp(stem ?? '')}-\\d{5}-of-${count}\\.gguf$`, 'i');
  return (await readdir(join(path, '..'))).filter((file) => pattern.test(file));
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
