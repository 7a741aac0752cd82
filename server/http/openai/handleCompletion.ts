import { nanoid } from 'nanoid';
import type { ErrorCode } from '../../../protocol/index.js';
import { admitGeneration } from '../../admitGeneration.js';
import { type ApiKeys, bearerToken } from '../../auth/ApiKeys.js';
import { isLoopbackRequest } from '../../auth/loopbackOnly.js';
import type { ChatMessage, SamplingParams } from '../../engine/Engine.js';
import { maxTokensAllowed, type ServerContext } from '../../ServerContext.js';
import type { Generation } from '../../scheduler/Generation.js';
import {
  type HttpRequest,
  type HttpResponse,
  PayloadTooLargeError,
  RequestTimeoutError,
} from '../../transport/Transport.js';
import type { ServerState } from '../HttpRoutes.js';
import { sendJson } from '../sendJson.js';
import {
  type ApiKind,
  chunkOf,
  completionOf,
  finishReasonOf,
  type ResponseHead,
  usageChunkOf,
} from './openAiFormat.js';
import { ChatCompletionRequest, CompletionRequest, countItems } from './requestSchemas.js';
import { sendOpenAiError } from './sendOpenAiError.js';

export type CompletionDeps = { context: ServerContext | undefined; state: ServerState; keys: ApiKeys };

type Failure = { status: number; code: ErrorCode; message: string; retryAfterMs?: number };
type Parsed = { messages: ChatMessage[]; params: SamplingParams; stream: boolean; includeUsage: boolean };

/**
 * POST /v1/chat/completions ('chat') and /v1/completions ('text'), on the same scheduler, keys and
 * limits as the WebSocket path. A client that goes away cancels its generation.
 */
export async function handleCompletion(
  deps: CompletionDeps,
  kind: ApiKind,
  request: HttpRequest,
  response: HttpResponse,
): Promise<void> {
  const fail = (failure: Failure) => {
    deps.context?.metrics.countError(failure.code);
    sendOpenAiError(response, failure.status, failure.code, failure.message, failure.retryAfterMs);
  };
  const ctx = deps.context;
  if (ctx === undefined || deps.state !== 'ready') {
    const code = deps.state === 'shutting_down' ? 'shutting_down' : 'not_ready';
    fail({
      status: 503,
      code,
      message: code === 'not_ready' ? 'The model is still loading' : 'The server is shutting down',
      retryAfterMs: 1000,
    });
    return;
  }
  const clientKey = clientKeyOf(deps.keys, request);
  if (clientKey === undefined) {
    const message = deps.keys.enabled
      ? 'Send Authorization: Bearer <API key>'
      : 'Without API keys only loopback hosts may call the API';
    fail({ status: deps.keys.enabled ? 401 : 403, code: deps.keys.enabled ? 'unauthorized' : 'forbidden', message });
    return;
  }
  // Cheap limits first: the request counts against the key's budget before its body is read or checked.
  const overBudget = ctx.limiter.admitRequest(clientKey);
  if (overBudget !== undefined) {
    return fail({
      status: 429,
      code: 'rate_limited',
      message: overBudget.message,
      retryAfterMs: overBudget.retryAfterMs,
    });
  }
  const body = await readJson(response, ctx.config.maxBodyBytes);
  if ('status' in body) return fail(body);
  const parsed = parseRequest(ctx, kind, body.value);
  if ('status' in parsed) return fail(parsed);

  const id = nanoid(16);
  const admission = admitGeneration(
    ctx,
    {
      id: `g_${id}`,
      sessionId: `http_${id}`,
      clientKey,
      format: kind,
      replayable: false,
      messages: parsed.messages,
      params: parsed.params,
    },
    { requestCounted: true },
  );
  if (!admission.ok) {
    const status = admission.code === 'shutting_down' ? 503 : 429;
    return fail({
      status,
      code: admission.code,
      message: admission.message,
      retryAfterMs: admission.retryAfterMs ?? 1000,
    });
  }
  const { generation } = admission;
  response.onAborted(() => ctx.scheduler.cancel(generation.id));
  const head: ResponseHead = {
    id: `${kind === 'chat' ? 'chatcmpl' : 'cmpl'}-${id}`,
    created: Math.floor(Date.now() / 1000),
    model: ctx.engineInfo.modelName,
    kind,
  };
  if (parsed.stream) {
    streamAnswer(generation, head, parsed.includeUsage, response, () => {
      // A reader this slow would make the server hold the whole answer: stop, as on the WebSocket path.
      if (response.backlogBytes <= ctx.config.maxBackpressureBytes) return;
      ctx.scheduler.cancel(generation.id);
      response.end();
    });
  } else sendAnswer(generation, head, response);
  ctx.scheduler.pump();
}

/** Server-Sent Events: one `data:` line per chunk, a last chunk with the finish reason, then `[DONE]`. */
function streamAnswer(
  generation: Generation,
  head: ResponseHead,
  includeUsage: boolean,
  response: HttpResponse,
  checkBacklog: () => void,
): void {
  const write = (payload: unknown) => {
    if (!response.write(`data: ${JSON.stringify(payload)}\n\n`)) checkBacklog();
  };
  let started = false;
  const start = () => {
    if (started) return;
    started = true;
    response.writeHead(200, {
      'content-type': 'text/event-stream',
      'cache-control': 'no-cache',
      'x-accel-buffering': 'no',
    });
    if (head.kind === 'chat')
      write({
        ...chunkOf(head, '', 'content', null),
        choices: [{ index: 0, delta: { role: 'assistant', content: '' }, finish_reason: null, logprobs: null }],
      });
  };
  // The head goes out with the first chunk, so that a prompt refused by the engine (context_overflow) is still a 400.
  generation.subscribe((event) => {
    if (event.kind === 'chunk') {
      start();
      write(chunkOf(head, event.text, event.channel, null));
    }
    if (event.kind !== 'done') return;
    const { outcome } = event;
    if (!started && outcome.error !== undefined) {
      sendFailedOutcome(response, outcome.error);
      return;
    }
    start();
    if (outcome.error !== undefined)
      write({ error: { message: outcome.error.message, type: 'server_error', code: outcome.error.code } });
    write(chunkOf(head, '', 'content', finishReasonOf(outcome.finish)));
    if (includeUsage) write(usageChunkOf(head, outcome));
    response.end('data: [DONE]\n\n');
  });
}

function sendAnswer(generation: Generation, head: ResponseHead, response: HttpResponse): void {
  generation.subscribe((event) => {
    if (event.kind !== 'done') return;
    const { outcome } = event;
    if (outcome.error !== undefined) {
      sendFailedOutcome(response, outcome.error);
      return;
    }
    const reasoning = generation.textOf('reasoning');
    sendJson(response, 200, completionOf(head, generation.contentText(), reasoning, outcome));
  });
}

/** A generation that failed before any answer: the prompt's fault (400) or the engine's (500). */
function sendFailedOutcome(response: HttpResponse, error: { code: ErrorCode; message: string }): void {
  sendOpenAiError(response, error.code === 'context_overflow' ? 400 : 500, error.code, error.message);
}

function clientKeyOf(keys: ApiKeys, request: HttpRequest): string | undefined {
  if (!keys.enabled) return isLoopbackRequest(request.headers) ? 'http:open' : undefined;
  const keyName = keys.verify(bearerToken(request.headers.authorization) ?? '');
  return keyName === undefined ? undefined : `key:${keyName}`;
}

async function readJson(response: HttpResponse, maxBytes: number): Promise<{ value: unknown } | Failure> {
  try {
    const body = await response.readBody(maxBytes);
    return { value: JSON.parse(body.toString('utf8')) };
  } catch (error) {
    if (error instanceof PayloadTooLargeError)
      return { status: 413, code: 'payload_too_large', message: error.message };
    if (error instanceof RequestTimeoutError) return { status: 408, code: 'request_timeout', message: error.message };
    return { status: 400, code: 'bad_json', message: 'The request body is not valid JSON' };
  }
}

function parseRequest(ctx: ServerContext, kind: ApiKind, value: unknown): Parsed | Failure {
  const tooMany = countItems(value);
  if (tooMany !== undefined) return { status: 413, code: 'payload_too_large', message: tooMany };
  const result = kind === 'chat' ? ChatCompletionRequest.safeParse(value) : CompletionRequest.safeParse(value);
  if (!result.success) {
    const message = result.error.issues
      .slice(0, 5)
      .map((i) => `${i.path.join('.') || '(body)'}: ${i.message}`)
      .join('; ');
    return { status: 400, code: 'bad_frame', message };
  }
  const body = result.data;
  if (body.model !== undefined && body.model !== ctx.engineInfo.modelName) {
    return {
      status: 404,
      code: 'not_found',
      message: `The model "${body.model.slice(0, 100)}" does not exist; see GET /v1/models`,
    };
  }
  const messages: ChatMessage[] =
    'messages' in body
      ? body.messages.map((m) => ({
          role: m.role === 'developer' ? 'system' : m.role,
          content: typeof m.content === 'string' ? m.content : (m.content ?? []).map((part) => part.text).join(''),
        }))
      : [{ role: 'user', content: body.prompt }];
  if (messages.some((m) => m.content.length > ctx.config.maxMessageChars)) {
    return {
      status: 413,
      code: 'payload_too_large',
      message: `A message may be at most ${ctx.config.maxMessageChars} characters`,
    };
  }
  const limit = maxTokensAllowed(ctx);
  const maxTokens = body.max_completion_tokens ?? body.max_tokens ?? Math.min(ctx.config.defaultMaxTokens, limit);
  if (maxTokens > limit) {
    return { status: 400, code: 'bad_frame', message: `max_tokens may be at most ${limit} (the context size)` };
  }
  const stop = typeof body.stop === 'string' ? [body.stop] : (body.stop ?? undefined);
  const params: SamplingParams = {
    maxTokens,
    ...(body.temperature == null ? {} : { temperature: body.temperature }),
    ...(body.top_p == null ? {} : { topP: body.top_p }),
    ...(body.seed == null ? {} : { seed: body.seed }),
    ...(stop === undefined ? {} : { stop }),
    ...('reasoning_effort' in body && body.reasoning_effort != null ? { reasoning: body.reasoning_effort } : {}),
  };
  return { messages, params, stream: body.stream === true, includeUsage: body.stream_options?.include_usage === true };
}
