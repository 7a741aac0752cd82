import { PROTOCOL_VERSION, WS_PATH } from '../../protocol/index.js';
import type { EngineInfo } from '../engine/Engine.js';
import type { Logger } from '../log.js';
import type { HttpRequest, HttpResponse } from '../transport/Transport.js';
import { sendJson } from './sendJson.js';
import { serveStatic } from './serveStatic.js';

export type ServerState = 'loading' | 'ready' | 'shutting_down' | 'failed';

export type HttpRoutesOptions = {
  staticDir: string;
  log: Logger;
  state: () => ServerState;
  engineInfo: () => EngineInfo | undefined;
};

/** Health, readiness and the web demo. */
export function createHttpRoutes(options: HttpRoutesOptions) {
  return (request: HttpRequest, response: HttpResponse): void => {
    route(options, request, response).catch((error: unknown) => {
      options.log.error({ err: error, path: request.path }, 'HTTP handler failed');
      sendJson(response, 500, { error: { code: 'internal', message: 'Internal error' } });
    });
  };
}

async function route(options: HttpRoutesOptions, request: HttpRequest, response: HttpResponse): Promise<void> {
  const { method, path } = request;
  if (method !== 'GET' && method !== 'HEAD') {
    sendJson(
      response,
      405,
      { error: { code: 'bad_frame', message: `${method} is not allowed on ${path}` } },
      { allow: 'GET, HEAD' },
    );
    return;
  }
  if (path === '/healthz') {
    sendJson(response, 200, { status: 'ok' });
    return;
  }
  if (path === '/readyz') {
    const state = options.state();
    const model = options.engineInfo();
    sendJson(response, state === 'ready' ? 200 : 503, { status: state, ...(model ? { model } : {}) });
    return;
  }
  if (path === WS_PATH) {
    const message = `Open a WebSocket here with the subprotocol "${PROTOCOL_VERSION}"`;
    sendJson(response, 426, { error: { code: 'unsupported_version', message } }, { upgrade: 'websocket' });
    return;
  }
  await serveStatic(options.staticDir, path, response);
}
