import { nanoid } from 'nanoid';
import type { Refusal, ResponseFormat } from '../../../../protocol/index.js';
import { admitGeneration } from '../../../admitGeneration.js';
import type { Identity } from '../../../auth/Identity.js';
import { checkResponseFormat } from '../../../engine/checkResponseFormat.js';
import { checkToolHistory, checkTools } from '../../../engine/checkTools.js';
import type { ChatMessage, SamplingParams, ToolChoice, ToolDefinition } from '../../../engine/Engine.js';
import { maxTokensAllowed, type ServerContext, unknownModel } from '../../../ServerContext.js';
import type { Generation } from '../../../scheduler/Generation.js';
import { StoreUnavailable } from '../../../store/Store.js';
import { storeRefusal } from '../../../store/storeRefusal.js';
import type { HttpResponse } from '../../../transport/Transport.js';
import { type ApiDeps, describeIssues, readyRequest } from '../../readyRequest.js';
import { sendJson, sendRefusal } from '../../sendJson.js';
import { reasoningLevelOf } from '../requestSchemas.js';
import { appendItems, parseInputItems } from './inputItems.js';
import { ResponseBuilder, type ResponseEvent, type ResponseSettings } from './ResponseBuilder.js';
import {
  type ResponsesRequest as Request,
  ResponsesRequest,
  refuseUnsupportedResponseFields,
  type TextFormat,
} from './responsesRequest.js';
import { answerMessages, loadResponse, resolveReferences, saveResponse } from './storedResponses.js';

type Parsed = {
  /** What the model sees: the instructions, then the conversation. */
  messages: ChatMessage[];
  /** The conversation without the instructions, kept for a next response. */
  conversation: ChatMessage[];
  params: SamplingParams;
  settings: ResponseSettings;
  stream: boolean;
  store: boolean;
  cacheKey: string | undefined;
};

/**
 * POST /v1/responses: OpenAI's Responses API on the same scheduler, keys and limits as chat
 * completions. A response is stored (unless `store: false`) for as long as an unused session is
 * kept, so that `previous_response_id` and `item_reference` continue it, on any instance sharing
 * the store.
 */
export async function handleResponses(deps: ApiDeps, identity: Identity, response: HttpResponse): Promise<void> {
  const ready = await readyRequest(deps, identity.clientKey, response, 'openai');
  if (ready === undefined) return;
  const { ctx, fail } = ready;
  let parsed: Parsed | Refusal;
  try {
    parsed = await parseRequest(ctx, identity, ready.body);
  } catch (error) {
    if (error instanceof StoreUnavailable) return fail(storeRefusal(error));
    throw error;
  }
  if ('code' in parsed) return fail(parsed);
  const request = parsed;

  const key = nanoid(16);
  const admission = await admitGeneration(
    ctx,
    {
      id: `g_${key}`,
      sessionId: request.cacheKey === undefined ? `http_${key}` : `http_${identity.clientKey}_${request.cacheKey}`,
      clientKey: identity.clientKey,
      replayable: false,
      messages: request.messages,
      params: request.params,
    },
    {
      requestCounted: true,
      attach: (generation) => {
        // The client may have left while the store was read or the admission waited.
        if (response.aborted) ctx.scheduler.cancel(generation.id);
        response.onAborted(() => ctx.scheduler.cancel(generation.id));
        const done = async (builder: ResponseBuilder, result: ReturnType<ResponseBuilder['finish']>) => {
          if (!request.store) return;
          const conversation = [...request.conversation, ...answerMessages(builder.items())];
          await saveResponse(ctx.store, identity.ownerKey, { response: result, conversation }, ctx.config.sessionTtlMs);
        };
        writeResponse(ctx, generation, key, request, response, done);
      },
    },
  );
  if (!admission.ok) return fail({ retryAfterMs: 1000, ...admission });
  ctx.scheduler.pump();
}

type OnDone = (builder: ResponseBuilder, result: ReturnType<ResponseBuilder['finish']>) => Promise<void>;

/**
 * The generation as a response: streamed as server-sent events (`event:` naming each), or whole
 * once it ends. The head goes out with the first event, so a prompt the engine refuses
 * (context_overflow) is still a 400.
 */
function writeResponse(
  ctx: ServerContext,
  generation: Generation,
  key: string,
  { settings, stream }: Pick<Parsed, 'settings' | 'stream'>,
  response: HttpResponse,
  onDone: OnDone,
): void {
  const send = (event: ResponseEvent) => {
    if (response.write(`event: ${event.type}\ndata: ${JSON.stringify(event)}\n\n`)) return;
    // A reader this slow would make the server hold the whole answer: stop, as on the other paths.
    if (response.backlogBytes <= ctx.config.maxBackpressureBytes) return;
    ctx.scheduler.cancel(generation.id);
    response.end();
  };
  const builder = new ResponseBuilder(key, Math.floor(Date.now() / 1000), settings, stream ? send : undefined);
  let started = false;
  const start = () => {
    if (!stream || started) return;
    started = true;
    response.writeHead(200, {
      'content-type': 'text/event-stream',
      'cache-control': 'no-cache',
      'x-accel-buffering': 'no',
    });
    builder.start();
  };
  generation.subscribe((event) => {
    if (event.kind === 'chunk') {
      start();
      builder.text(event.channel, event.text, event.tokens);
    }
    if (event.kind === 'toolCall') {
      start();
      builder.toolCall(event.index, event, event.arguments);
    }
    if (event.kind !== 'done') return;
    const { outcome } = event;
    if (outcome.error !== undefined && builder.items().length === 0)
      return sendRefusal(response, outcome.error, { shape: 'openai' });
    start();
    const result = builder.finish(outcome);
    // The response is stored before it is answered: a client that continues at once finds it.
    void onDone(builder, result)
      .catch((error: unknown) => ctx.log.warn({ err: error }, 'could not store a response'))
      .finally(() => (stream ? response.end() : sendJson(response, result)));
  });
}

async function parseRequest(ctx: ServerContext, identity: Identity, value: unknown): Promise<Parsed | Refusal> {
  const unsupported = refuseUnsupportedResponseFields(value);
  if (unsupported !== undefined) return unsupported;
  const result = ResponsesRequest.safeParse(value);
  if (!result.success) {
    return { code: 'bad_frame', message: describeIssues(result.error.issues) };
  }
  const body = result.data;
  const noSuchModel = unknownModel(ctx, body.model);
  if (noSuchModel !== undefined) return noSuchModel;
  const conversation = await conversationOf(ctx, identity, body);
  if ('code' in conversation) return conversation;
  const messages: ChatMessage[] = [
    ...(body.instructions == null || body.instructions === ''
      ? []
      : [{ role: 'system' as const, content: body.instructions }]),
    ...conversation,
  ];
  if (messages.some((m) => m.content.length > ctx.config.maxMessageChars))
    return { code: 'payload_too_large', message: `A message may be at most ${ctx.config.maxMessageChars} characters` };
  // What is stored per response is bounded as a session's history is.
  const chars = conversation.reduce((sum, m) => sum + m.content.length + argumentsChars(m), 0);
  if (chars > ctx.config.maxSessionChars)
    return {
      code: 'payload_too_large',
      message: `The conversation holds ${chars} characters, over --max-session-chars (${ctx.config.maxSessionChars}): start a new one`,
    };
  const params = paramsOf(ctx, body);
  if ('code' in params) return params;
  const store = body.store ?? true;
  return {
    messages,
    conversation,
    params,
    stream: body.stream === true,
    store,
    cacheKey: body.prompt_cache_key ?? undefined,
    settings: {
      model: body.model ?? ctx.engineInfo.modelName,
      instructions: body.instructions ?? null,
      previousResponseId: body.previous_response_id ?? null,
      maxOutputTokens: body.max_output_tokens ?? null,
      temperature: body.temperature ?? null,
      topP: body.top_p ?? null,
      store,
      tools: body.tools ?? [],
      toolChoice: body.tool_choice ?? 'auto',
      parallelToolCalls: body.parallel_tool_calls ?? true,
      reasoningEffort: body.reasoning?.effort ?? null,
      textFormat: body.text?.format ?? { type: 'text' },
      truncation: body.truncation ?? 'disabled',
      metadata: body.metadata ?? {},
    },
  };
}

function argumentsChars(message: ChatMessage): number {
  return (message.toolCalls ?? []).reduce((sum, call) => sum + call.arguments.length, 0);
}

/** The previous response's conversation (if continued), then this request's items. */
async function conversationOf(ctx: ServerContext, identity: Identity, body: Request): Promise<ChatMessage[] | Refusal> {
  const items = parseInputItems(body.input);
  if ('code' in items) return items;
  const resolved = await resolveReferences(ctx.store, identity.ownerKey, items);
  if ('code' in resolved) return resolved;
  const conversation: ChatMessage[] = [];
  if (body.previous_response_id != null) {
    const previous = await loadResponse(ctx.store, identity.ownerKey, body.previous_response_id);
    if ('code' in previous) return { ...previous, param: 'previous_response_id' };
    conversation.push(...previous.conversation);
  }
  const appended = appendItems(conversation, resolved);
  if ('code' in appended) return appended;
  return checkToolHistory(conversation, 'input') ?? conversation;
}

function paramsOf(ctx: ServerContext, body: Request): SamplingParams | Refusal {
  const limit = maxTokensAllowed(ctx);
  const maxTokens = body.max_output_tokens ?? Math.min(ctx.config.defaultMaxTokens, limit);
  if (maxTokens > limit)
    return {
      code: 'bad_frame',
      message: `max_output_tokens may be at most ${limit} (the context size)`,
      param: 'max_output_tokens',
    };
  const responseFormat = responseFormatOf(body.text?.format);
  if ('code' in responseFormat) return responseFormat;
  const tools = toolsOf(body);
  if ('code' in tools) return tools;
  return {
    maxTokens,
    ...(body.temperature == null ? {} : { temperature: body.temperature }),
    ...(body.top_p == null ? {} : { topP: body.top_p }),
    ...(body.model === undefined ? {} : { model: body.model }),
    ...(body.reasoning?.effort == null ? {} : { reasoning: reasoningLevelOf(body.reasoning.effort) }),
    ...(responseFormat.format === undefined ? {} : { responseFormat: responseFormat.format }),
    ...tools,
  };
}

/** `text.format` as the engine's response format, or the refusal of a schema the grammar cannot enforce. */
function responseFormatOf(format: TextFormat | null | undefined): { format: ResponseFormat | undefined } | Refusal {
  if (format == null || format.type === 'text') return { format: undefined };
  if (format.type === 'json_object') return { format: { type: 'json_object' } };
  const converted: ResponseFormat = {
    type: 'json_schema',
    schema: format.schema,
    ...(format.name === undefined ? {} : { name: format.name }),
  };
  return checkResponseFormat(converted, 'text.format.schema') ?? { format: converted };
}

/**
 * Function tools as the engine's, checked as on the chat path (checkTools); as there, a JSON
 * format cannot be combined with tools the model may call.
 */
function toolsOf(body: Request): Pick<SamplingParams, 'tools' | 'toolChoice' | 'parallelToolCalls'> | Refusal {
  const tools: ToolDefinition[] = (body.tools ?? []).map((tool) => ({
    name: tool.name,
    parameters: tool.parameters ?? NO_PARAMETERS,
    ...(tool.description == null ? {} : { description: tool.description }),
  }));
  const choice = body.tool_choice;
  const toolChoice: ToolChoice = choice == null ? 'auto' : typeof choice === 'string' ? choice : { name: choice.name };
  const refusal = checkTools(tools, toolChoice, 'tools');
  if (refusal !== undefined) return refusal;
  if (tools.length === 0 || toolChoice === 'none') return {};
  const format = body.text?.format?.type;
  if (format !== undefined && format !== 'text')
    return {
      code: 'unsupported_parameter',
      message: 'text.format: cannot be combined with tools unless tool_choice is "none"',
      param: 'text.format',
    };
  return { tools, toolChoice, parallelToolCalls: body.parallel_tool_calls ?? true };
}

/** A tool without `parameters` takes none: an empty object. */
const NO_PARAMETERS = { type: 'object', properties: {}, additionalProperties: false };

/** GET /v1/responses/{id}: a stored response of the caller's, as it was answered. */
export async function retrieveResponse(
  ctx: ServerContext | undefined,
  identity: Identity,
  id: string,
  refuse: (refusal: Refusal) => void,
  response: HttpResponse,
): Promise<void> {
  if (ctx === undefined)
    return refuse({ code: 'not_ready', message: 'The model is still loading', retryAfterMs: 1000 });
  const overBudget = await ctx.limiter.admitRequest(identity.clientKey);
  if (overBudget !== undefined) return refuse(overBudget);
  try {
    const record = await loadResponse(ctx.store, identity.ownerKey, id);
    if ('code' in record) refuse(record);
    else sendJson(response, record.response);
  } catch (error) {
    if (!(error instanceof StoreUnavailable)) throw error;
    refuse(storeRefusal(error));
  }
}
