import { PROTOCOL_VERSION, WS_PATH } from '../../protocol/index.js';
import { type ApiKeys, bearerToken } from '../auth/ApiKeys.js';
import { isLoopbackRequest } from '../auth/loopbackOnly.js';
import { TICKET_PREFIX, type TicketStore } from '../auth/TicketStore.js';
import type { Logger } from '../log.js';
import type { ServerContext } from '../ServerContext.js';
import type { HttpRequest, HttpResponse } from '../transport/Transport.js';
import { handleCompletion } from './openai/handleCompletion.js';
import type { ApiKind } from './openai/openAiFormat.js';
import { sendOpenAiError } from './openai/sendOpenAiError.js';
import { sendJson } from './sendJson.js';
import { serveStatic } from './serveStatic.js';

export type ServerState = 'loading' | 'ready' | 'shutting_down' | 'failed';

export type HttpRoutesOptions = {
  staticDir: string;
  keys: ApiKeys;
  tickets: TicketStore;
  log: Logger;
  state: () => ServerState;
  /** Set once the model is loaded. */
  context: () => ServerContext | undefined;
};

/** Health, readiness, metrics, browser tickets, the OpenAI-compatible API and the web demo. */
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
  // Without keys only loopback is trusted, on every path: a DNS-rebinding page sends a foreign Host or Origin.
  if (!options.keys.enabled && !isLoopbackRequest(request.headers)) {
    const message = 'Without API keys this server only answers requests to a loopback host';
    sendJson(response, 403, { error: { code: 'forbidden', message } });
    return;
  }
  if (path === '/v1/tickets') {
    issueTicket(options, request, response);
    return;
  }
  const api = API_KINDS[path];
  if (api !== undefined) {
    if (method !== 'POST') return sendOpenAiError(response, 405, 'bad_frame', 'Use POST');
    const deps = { context: options.context(), state: options.state(), keys: options.keys };
    return handleCompletion(deps, api, request, response);
  }
  if (path === '/v1/models') {
    if (method !== 'GET') return sendOpenAiError(response, 405, 'bad_frame', 'Use GET');
    listModels(options, request, response);
    return;
  }
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
    const model = options.context()?.engineInfo;
    sendJson(response, state === 'ready' ? 200 : 503, { status: state, ...(model ? { model } : {}) });
    return;
  }
  if (path === '/metrics') {
    const metrics = options.context()?.metrics;
    if (metrics === undefined) {
      sendJson(response, 503, { error: { code: 'not_ready', message: 'The model is still loading' } });
      return;
    }
    const body = await metrics.registry.metrics();
    response.writeHead(200, { 'content-type': metrics.registry.contentType });
    response.end(body);
    return;
  }
  if (path === WS_PATH) {
    const message = `Open a WebSocket here with the subprotocol "${PROTOCOL_VERSION}"`;
    sendJson(response, 426, { error: { code: 'unsupported_version', message } }, { upgrade: 'websocket' });
    return;
  }
  await serveStatic(options.staticDir, path, response);
}

const API_KINDS: Readonly<Record<string, ApiKind>> = { '/v1/chat/completions': 'chat', '/v1/completions': 'text' };

/** GET /v1/models: the one model this server runs. */
function listModels({ context, keys }: HttpRoutesOptions, request: HttpRequest, response: HttpResponse): void {
  if (keys.enabled && keys.verify(bearerToken(request.headers.authorization) ?? '') === undefined) {
    sendOpenAiError(response, 401, 'unauthorized', 'Send Authorization: Bearer <API key>');
    return;
  }
  const info = context()?.engineInfo;
  if (info === undefined) {
    sendOpenAiError(response, 503, 'not_ready', 'The model is still loading', 1000);
    return;
  }
  const model = { id: info.modelName, object: 'model', created: STARTED_AT, owned_by: 'llm-chat-server' };
  sendJson(response, 200, { object: 'list', data: [model] });
}

const STARTED_AT = Math.floor(Date.now() / 1000);

/** POST /v1/tickets: a single-use ticket for a browser, in exchange for an API key it never sees. */
function issueTicket({ keys, tickets }: HttpRoutesOptions, request: HttpRequest, response: HttpResponse): void {
  if (request.method !== 'POST') {
    sendJson(response, 405, { error: { code: 'bad_frame', message: 'Use POST' } }, { allow: 'POST' });
    return;
  }
  if (!keys.enabled) {
    const message = 'This server runs without API keys: connect to the WebSocket directly';
    sendJson(response, 404, { error: { code: 'not_found', message } });
    return;
  }
  const keyName = keys.verify(bearerToken(request.headers.authorization) ?? '');
  if (keyName === undefined) {
    const message = 'Send Authorization: Bearer <API key>';
    sendJson(response, 401, { error: { code: 'unauthorized', message } }, { 'www-authenticate': 'Bearer' });
    return;
  }
  const { ticket, expiresInMs } = tickets.issue(keyName);
  sendJson(
    response,
    200,
    { ticket, expiresInMs, subprotocol: `${TICKET_PREFIX}${ticket}` },
    { 'cache-control': 'no-store' },
  );
}
