import { HTTP_STATUS, type Refusal, WS_PATH } from '../../protocol/index.js';
import { type Access, authenticate, isRefusal } from '../auth/authenticate.js';
import type { Identity } from '../auth/Identity.js';
import { isLoopbackRequest } from '../auth/loopbackOnly.js';
import { TICKET_PREFIX } from '../auth/TicketStore.js';
import type { Logger } from '../log.js';
import { type ServerContext, unknownModel } from '../ServerContext.js';
import { StoreUnavailable } from '../store/Store.js';
import { storeRefusal } from '../store/storeRefusal.js';
import type { HttpRequest, HttpResponse } from '../transport/Transport.js';
import { handleTokenize, type TokenizeKind } from './handleTokenize.js';
import { handleCompletion } from './openai/handleCompletion.js';
import { handleEmbeddings } from './openai/handleEmbeddings.js';
import type { ApiKind } from './openai/openAiFormat.js';
import { handleResponses, retrieveResponse } from './openai/responses/handleResponses.js';
import { sendJson, sendRefusal } from './sendJson.js';
import { serveStatic } from './serveStatic.js';
import { UPGRADE_PROBE_HEADERS, upgradeProbe } from './upgradeProbe.js';

export type ServerState = 'loading' | 'ready' | 'shutting_down' | 'failed';

export type HttpRoutesOptions = {
  staticDir: string;
  access: Access;
  log: Logger;
  state: () => ServerState;
  /** Set once the model is loaded. */
  context: () => ServerContext | undefined;
  /** Why the store cannot serve now (Redis lost, a write failing), or undefined. */
  storeUnavailable: () => string | undefined;
};

/** The unit of limits for HTTP requests in open mode: HTTP as a whole. */
const OPEN_HTTP_CLIENT = 'http:open';

/** Health, readiness, metrics, browser tickets, the OpenAI-compatible API and the web demo. */
export function createHttpRoutes(options: HttpRoutesOptions) {
  return (request: HttpRequest, response: HttpResponse): void => {
    route(options, request, response).catch((error: unknown) => {
      if (error instanceof StoreUnavailable) {
        sendRefusal(response, storeRefusal(error), { shape: shapeOf(request.path) });
        return;
      }
      options.log.error({ err: error, path: request.path }, 'HTTP handler failed');
      sendRefusal(response, { code: 'internal', message: 'Internal error' });
    });
  };
}

async function route(options: HttpRoutesOptions, request: HttpRequest, response: HttpResponse): Promise<void> {
  const { method, path } = request;
  const api = API_KINDS[path];
  const shape = shapeOf(path);
  const probeHeaders = path === WS_PATH ? UPGRADE_PROBE_HEADERS : {};
  const refuse = (refusal: Refusal, headers: Record<string, string> = {}) =>
    sendRefusal(response, refusal, { shape, headers: { ...probeHeaders, ...headers } });
  const identity = await authenticate(request, options.access, OPEN_HTTP_CLIENT);
  const keyed = options.access.keys.enabled;
  // In open mode every path refuses a foreign Host or Origin (DNS rebinding); with keys, the API paths do.
  // The widget's files are public: any loopback page may load them, so that the widget can say why its socket is refused.
  const publicFile = isWidgetFile(path) && isLoopbackRequest(request.headers);
  if (!keyed && isRefusal(identity) && !publicFile) return refuse(identity);
  const allowOnly = (allowed: string) =>
    refuse(
      { code: 'method_not_allowed', message: `${method} is not allowed on ${path}; use ${allowed}` },
      { allow: allowed },
    );

  if (path === '/v1/tickets') {
    if (method !== 'POST') return allowOnly('POST');
    if (!keyed) return refuse({ code: 'not_found', message: 'This server runs without API keys: connect directly' });
    if (isRefusal(identity)) return refuse(identity, { 'www-authenticate': 'Bearer' });
    return issueTicket(options, identity, response);
  }
  if (api !== undefined) {
    if (method !== 'POST') return allowOnly('POST');
    if (isRefusal(identity)) return refuse(identity);
    return handleCompletion({ context: options.context(), state: options.state() }, api, identity, response);
  }
  if (path === EMBEDDINGS_PATH) {
    if (method !== 'POST') return allowOnly('POST');
    if (isRefusal(identity)) return refuse(identity);
    return handleEmbeddings({ context: options.context(), state: options.state() }, identity, response);
  }
  const tokenizeKind = TOKENIZE_KINDS[path];
  if (tokenizeKind !== undefined) {
    if (method !== 'POST') return allowOnly('POST');
    if (isRefusal(identity)) return refuse(identity);
    const deps = { context: options.context(), state: options.state() };
    return handleTokenize(deps, tokenizeKind, identity.clientKey, response);
  }
  if (path === RESPONSES_PATH) {
    if (method !== 'POST') return allowOnly('POST');
    if (isRefusal(identity)) return refuse(identity);
    return handleResponses({ context: options.context(), state: options.state() }, identity, response);
  }
  if (path.startsWith(`${RESPONSES_PATH}/`)) {
    if (method !== 'GET') return allowOnly('GET');
    if (isRefusal(identity)) return refuse(identity);
    const id = decodePathPart(path.slice(RESPONSES_PATH.length + 1));
    return retrieveResponse(options.context(), identity, id, refuse, response);
  }
  if (path === '/v1/models') {
    if (method !== 'GET') return allowOnly('GET');
    if (isRefusal(identity)) return refuse(identity);
    return listModels(options, refuse, response);
  }
  if (path.startsWith(MODEL_PATH_PREFIX)) {
    if (method !== 'GET') return allowOnly('GET');
    if (isRefusal(identity)) return refuse(identity);
    return describeModel(options, decodePathPart(path.slice(MODEL_PATH_PREFIX.length)), refuse, response);
  }
  if (isUnknownApiPath(path)) {
    if (isRefusal(identity)) return refuse(identity);
    return refuse(notServed(path));
  }
  if (method !== 'GET' && method !== 'HEAD') return allowOnly('GET, HEAD');
  if (path === '/healthz') return sendJson(response, { status: 'ok' });
  if (path === '/readyz') {
    const state = options.state();
    const model = options.context()?.engineInfo;
    const storeProblem = options.storeUnavailable();
    if (state === 'ready' && storeProblem !== undefined) {
      const body = { status: 'store_unavailable', reason: storeProblem, ...(model ? { model } : {}) };
      return sendJson(response, body, { status: HTTP_STATUS.store_unavailable });
    }
    const status = state === 'ready' ? 200 : HTTP_STATUS.not_ready;
    return sendJson(response, { status: state, ...(model ? { model } : {}) }, { status });
  }
  if (path === '/metrics') {
    const metrics = options.context()?.metrics;
    if (metrics === undefined) return refuse({ code: 'not_ready', message: 'The model is still loading' });
    const body = await metrics.registry.metrics();
    response.writeHead(200, { 'content-type': metrics.registry.contentType });
    response.end(body);
    return;
  }
  if (path === WS_PATH) return refuse(upgradeProbe(options.state(), identity));
  await serveStatic(options.staticDir, path, response);
}

const API_KINDS: Readonly<Record<string, ApiKind>> = { '/v1/chat/completions': 'chat', '/v1/completions': 'text' };

const EMBEDDINGS_PATH = '/v1/embeddings';
const RESPONSES_PATH = '/v1/responses';

/** llama-server's tokenizer endpoints, at its paths (outside /v1/, so errors in the plain shape). */
const TOKENIZE_KINDS: Readonly<Record<string, TokenizeKind>> = { '/tokenize': 'tokenize', '/detokenize': 'detokenize' };

const ROUTED_PATHS: ReadonlySet<string> = new Set(['/healthz', '/readyz', '/metrics', ...Object.keys(TOKENIZE_KINDS)]);

/** A file of the widget or the demo page: neither the API (`/v1/…`) nor a route of the server's own. */
function isWidgetFile(path: string): boolean {
  return !path.startsWith('/v1/') && !ROUTED_PATHS.has(path);
}

/** The OpenAI-compatible paths (and unknown ones under /v1/) answer errors in OpenAI's shape; the others in the plain one. */
function shapeOf(path: string): 'openai' | 'plain' {
  return API_KINDS[path] !== undefined ||
    path === EMBEDDINGS_PATH ||
    path.startsWith('/v1/models') ||
    path.startsWith(RESPONSES_PATH) ||
    isUnknownApiPath(path)
    ? 'openai'
    : 'plain';
}

const KNOWN_API_PATHS: ReadonlySet<string> = new Set([
  ...Object.keys(API_KINDS),
  EMBEDDINGS_PATH,
  RESPONSES_PATH,
  '/v1/models',
  '/v1/tickets',
  WS_PATH,
]);

/** A path under /v1/ that the server does not serve: 404 whatever the method, as OpenAI answers. */
function isUnknownApiPath(path: string): boolean {
  return (
    path.startsWith('/v1/') &&
    !KNOWN_API_PATHS.has(path) &&
    !path.startsWith(MODEL_PATH_PREFIX) &&
    !path.startsWith(`${RESPONSES_PATH}/`)
  );
}

/** A path segment's text; a malformed escape reads as itself (and then names nothing: 404). */
function decodePathPart(part: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    return part;
  }
}

function notServed(path: string): Refusal {
  const served = 'POST /v1/chat/completions, /v1/completions, /v1/responses, /v1/embeddings; GET /v1/models';
  return { code: 'not_found', message: `No such endpoint: ${path.slice(0, 200)} (served: ${served})` };
}

/** GET /v1/models: the model this server runs, or every model its upstream engines serve (the default first). */
function listModels({ context }: HttpRoutesOptions, refuse: (refusal: Refusal) => void, response: HttpResponse): void {
  const ctx = context();
  if (ctx === undefined) {
    refuse({ code: 'not_ready', message: 'The model is still loading', retryAfterMs: 1000 });
    return;
  }
  const data = ctx.models().map(modelObject);
  sendJson(response, { object: 'list', data });
}

/** GET /v1/models/{id}: one model, as OpenAI's clients look one up; 404 for a model not served. */
function describeModel(
  { context }: HttpRoutesOptions,
  id: string,
  refuse: (refusal: Refusal) => void,
  response: HttpResponse,
): void {
  const ctx = context();
  if (ctx === undefined) {
    refuse({ code: 'not_ready', message: 'The model is still loading', retryAfterMs: 1000 });
    return;
  }
  const unknown = unknownModel(ctx, id);
  if (unknown !== undefined) refuse(unknown);
  else sendJson(response, modelObject(id));
}

function modelObject(id: string) {
  return { id, object: 'model', created: STARTED_AT, owned_by: 'llm-chat-server' };
}

const MODEL_PATH_PREFIX = '/v1/models/';

const STARTED_AT = Math.floor(Date.now() / 1000);

/** POST /v1/tickets: a single-use ticket for a browser, in exchange for an API key it never sees. */
async function issueTicket({ access }: HttpRoutesOptions, identity: Identity, response: HttpResponse): Promise<void> {
  const { ticket, expiresInMs } = await access.tickets.issue(identity.keyName ?? '');
  sendJson(
    response,
    { ticket, expiresInMs, subprotocol: `${TICKET_PREFIX}${ticket}` },
    { headers: { 'cache-control': 'no-store' } },
  );
}
