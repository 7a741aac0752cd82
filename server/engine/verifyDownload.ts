import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { rm, stat } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import type { AnnouncedFile } from './hubFiles.js';
import { DownloadMismatchError } from './modelErrors.js';

/**
 * Checks a finished download against what its server announced: the size first (cheap), then the
 * sha256. A file that differs is deleted, so that no later start finds and loads it.
 */
export async function verifyDownload(path: string, announced: AnnouncedFile): Promise<void> {
  const { size } = await stat(path);
  if (announced.sizeBytes !== undefined && size !== announced.sizeBytes) {
    await rm(path, { force: true });
    throw new DownloadMismatchError(
      `The download of ${announced.url} is ${size} bytes where the server announced ${announced.sizeBytes}: ` +
        'it was deleted, not used. Start again to download it anew.',
    );
  }
  if (announced.sha256 === undefined) return;
  const actual = await sha256OfFile(path);
  if (actual !== announced.sha256) {
    await rm(path, { force: true });
    throw new DownloadMismatchError(
      `The download of ${announced.url} has sha256 ${actual} where the server announced ${announced.sha256}: ` +
        'it was deleted, not used. Start again to download it anew; if it happens again, the file on the server is damaged.',
    );
  }
}

export async function sha256OfFile(path: string): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(createReadStream(path), hash);
  return hash.digest('hex');
}
