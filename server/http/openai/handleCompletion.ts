import { nanoid } from 'nanoid';
import type { ErrorCode, Refusal } from '../../../protocol/index.js';
import { admitGeneration } from '../../admitGeneration.js';
import type { Identity } from '../../auth/Identity.js';
import type { ChatMessage, SamplingParams } from '../../engine/Engine.js';
import { refuseLogprobs } from '../../engine/logprobsSupport.js';
import { maxTokensAllowed, type ServerContext, unknownModel } from '../../ServerContext.js';
import type { Generation } from '../../scheduler/Generation.js';
import type { HttpResponse } from '../../transport/Transport.js';
import { type ApiDeps, describeIssues, readyRequest } from '../readyRequest.js';
import { sendJson, sendRefusal } from '../sendJson.js';
import { logprobsParamsOf, logprobsShaperFor } from './logprobsFormat.js';
import {
  type ApiKind,
  chunkOf,
  completionOf,
  finishReasonOf,
  type ResponseHead,
  toolCallChunkOf,
  usageChunkOf,
} from './openAiFormat.js';
import { refuseToolsOnCompletions, refuseUnsupported } from './refuseUnsupported.js';
import { ChatCompletionRequest, CompletionRequest, countItems, reasoningLevelOf } from './requestSchemas.js';
import { responseFormatOf } from './responseFormatOf.js';
import { messagesOf, toolsOf } from './toolsOf.js';

type Parsed = {
  messages: ChatMessage[];
  params: SamplingParams;
  stream: boolean;
  includeUsage: boolean;
  /** OpenAI's `prompt_cache_key`: requests that share it go back to the sequence that holds their cache. */
  cacheKey: string | undefined;
};

/**
 * POST /v1/chat/completions ('chat') and /v1/completions ('text'), on the same scheduler, keys and
 * limits as the WebSocket path. A client that goes away cancels its generation.
 */
export async function handleCompletion(
  deps: ApiDeps,
  kind: ApiKind,
  { clientKey }: Identity,
  response: HttpResponse,
): Promise<void> {
  const ready = await readyRequest(deps, clientKey, response, 'openai');
  if (ready === undefined) return;
  const { ctx, fail } = ready;
  const parsed = parseRequest(ctx, kind, ready.body);
  if ('code' in parsed) return fail(parsed);

  const id = nanoid(16);
  const head: ResponseHead = {
    id: `${kind === 'chat' ? 'chatcmpl' : 'cmpl'}-${id}`,
    created: Math.floor(Date.now() / 1000),
    model: parsed.params.model ?? ctx.engineInfo.modelName,
    kind,
  };
  const admission = await admitGeneration(
    ctx,
    {
      id: `g_${id}`,
      // The scheduler keeps a session on its sequence: one client's requests with one cache key are one conversation.
      sessionId: parsed.cacheKey === undefined ? `http_${id}` : `http_${clientKey}_${parsed.cacheKey}`,
      clientKey,
      format: kind,
      replayable: false,
      messages: parsed.messages,
      params: parsed.params,
    },
    {
      requestCounted: true,
      attach: (generation) => {
        response.onAborted(() => ctx.scheduler.cancel(generation.id));
        if (parsed.stream) {
          streamAnswer(generation, head, parsed.includeUsage, response, () => {
            // A reader this slow would make the server hold the whole answer: stop, as on the WebSocket path.
            if (response.backlogBytes <= ctx.config.maxBackpressureBytes) return;
            ctx.scheduler.cancel(generation.id);
            response.end();
          });
        } else sendAnswer(generation, head, response);
      },
    },
  );
  if (!admission.ok) return fail({ retryAfterMs: 1000, ...admission });
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
  const callsBegun = new Set<number>();
  const logprobs = logprobsShaperFor(head.kind, generation.params.logprobs);
  // The head goes out with the first chunk, so that a prompt refused by the engine (context_overflow) is still a 400.
  generation.subscribe((event) => {
    if (event.kind === 'chunk') {
      start();
      write(chunkOf(head, event.text, event.channel, null, logprobs?.of(event.channel, event.logprobs) ?? null));
    }
    if (event.kind === 'toolCall') {
      start();
      const first = !callsBegun.has(event.index);
      callsBegun.add(event.index);
      if (first || event.arguments !== '') write(toolCallChunkOf(head, event, first));
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
    const logprobs = logprobsShaperFor(head.kind, generation.params.logprobs)?.of(
      'content',
      generation.logprobsOf('content'),
    );
    sendJson(
      response,
      completionOf(head, generation.contentText(), reasoning, outcome, generation.toolCalls, logprobs),
    );
  });
}

/** A generation that failed before any answer: the prompt's fault (context_overflow) or the engine's. */
function sendFailedOutcome(response: HttpResponse, error: { code: ErrorCode; message: string }): void {
  sendRefusal(response, error, { shape: 'openai' });
}

function parseRequest(ctx: ServerContext, kind: ApiKind, value: unknown): Parsed | Refusal {
  const tooMany = countItems(value);
  if (tooMany !== undefined) return { code: 'payload_too_large', message: tooMany };
  const unsupported = (kind === 'text' ? refuseToolsOnCompletions(value) : undefined) ?? refuseUnsupported(value);
  if (unsupported !== undefined) return unsupported;
  const result = kind === 'chat' ? ChatCompletionRequest.safeParse(value) : CompletionRequest.safeParse(value);
  if (!result.success) {
    return { code: 'bad_frame', message: describeIssues(result.error.issues) };
  }
  const body = result.data;
  const noSuchModel = unknownModel(ctx, body.model);
  if (noSuchModel !== undefined) return noSuchModel;
  const messages: ChatMessage[] | Refusal =
    'messages' in body
      ? messagesOf(body)
      : [{ role: 'user', content: typeof body.prompt === 'string' ? body.prompt : body.prompt[0] }];
  if ('code' in messages) return messages;
  if (messages.some((m) => m.content.length > ctx.config.maxMessageChars)) {
    return {
      code: 'payload_too_large',
      message: `A message may be at most ${ctx.config.maxMessageChars} characters`,
    };
  }
  const limit = maxTokensAllowed(ctx);
  const maxTokens = body.max_completion_tokens ?? body.max_tokens ?? Math.min(ctx.config.defaultMaxTokens, limit);
  if (maxTokens > limit) {
    return { code: 'bad_frame', message: `max_tokens may be at most ${limit} (the context size)` };
  }
  const stop = typeof body.stop === 'string' ? [body.stop] : (body.stop ?? undefined);
  const responseFormat = responseFormatOf(body.response_format);
  if ('code' in responseFormat) return responseFormat;
  const logprobs = logprobsParamsOf(kind, body);
  if ('code' in logprobs) return logprobs;
  const topField = kind === 'chat' ? 'top_logprobs' : 'logprobs';
  const upstreamRefusal =
    logprobs.logprobs === undefined
      ? undefined
      : refuseLogprobs(ctx.engineInfo, ctx.tokenizer?.vocabularySize, logprobs.logprobs, {
          logprobs: 'logprobs',
          top: topField,
        });
  if (upstreamRefusal !== undefined) return upstreamRefusal;
  const tools = 'messages' in body ? toolsOf(body) : {};
  if ('code' in tools) return tools;
  const params: SamplingParams = {
    maxTokens,
    ...(body.temperature == null ? {} : { temperature: body.temperature }),
    ...(body.top_p == null ? {} : { topP: body.top_p }),
    ...(body.top_k == null ? {} : { topK: body.top_k }),
    ...(body.min_p == null ? {} : { minP: body.min_p }),
    ...(body.seed == null ? {} : { seed: body.seed }),
    ...(stop === undefined ? {} : { stop }),
    ...(body.model === undefined ? {} : { model: body.model }),
    ...('reasoning_effort' in body && body.reasoning_effort != null
      ? { reasoning: reasoningLevelOf(body.reasoning_effort) }
      : {}),
    ...(responseFormat.format === undefined ? {} : { responseFormat: responseFormat.format }),
    ...tools,
    ...logprobs,
  };
  return {
    messages,
    params,
    stream: body.stream === true,
    includeUsage: body.stream_options?.include_usage === true,
    cacheKey: body.prompt_cache_key ?? undefined,
  };
}
