import { readFile, stat } from 'node:fs/promises';
import { extname, join, normalize, resolve, sep } from 'node:path';
import type { HttpResponse } from '../transport/Transport.js';
import { sendRefusal } from './sendJson.js';

const CONTENT_TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.map': 'application/json',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.txt': 'text/plain; charset=utf-8',
};

/**
 * The widget's files (everything but pages) are public code that any site may embed: they go with
 * `Access-Control-Allow-Origin: *` (a module script loads only with it) and may be loaded by pages
 * that isolate themselves (COEP). Who may *use* the server is decided where it matters: the
 * WebSocket upgrade and the API check the page's origin.
 */
const EMBEDDABLE_HEADERS: Readonly<Record<string, string>> = {
  'access-control-allow-origin': '*',
  'cross-origin-resource-policy': 'cross-origin',
};

/** Serves a file from `root`; `/` is index.html. Paths that leave `root` are 404s. */
export async function serveStatic(root: string, urlPath: string, response: HttpResponse): Promise<void> {
  const file = resolveInside(root, urlPath === '/' ? '/index.html' : urlPath);
  const found =
    file === undefined
      ? false
      : await stat(file).then(
          (s) => s.isFile(),
          () => false,
        );
  if (file === undefined || !found) {
    sendRefusal(response, { code: 'not_found', message: `No such path: ${urlPath.slice(0, 200)}` });
    return;
  }
  const body = await readFile(file);
  const page = extname(file) === '.html';
  response.writeHead(200, {
    'content-type': CONTENT_TYPES[extname(file)] ?? 'application/octet-stream',
    'cache-control': page ? 'no-cache' : 'public, max-age=3600',
    'x-content-type-options': 'nosniff',
    ...(page ? {} : EMBEDDABLE_HEADERS),
  });
  response.end(body);
}

function resolveInside(root: string, urlPath: string): string | undefined {
  let decoded: string;
  try {
    decoded = decodeURIComponent(urlPath);
  } catch {
    return undefined;
  }
  if (decoded.includes('\0')) return undefined;
  const base = resolve(root);
  const file = resolve(join(base, normalize(decoded)));
  return file.startsWith(base + sep) ? file : undefined;
}
