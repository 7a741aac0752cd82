import type { Refusal } from '../../../protocol/index.js';
import type { Identity } from '../../auth/Identity.js';
import { EngineError } from '../../engine/Engine.js';
import { type ServerContext, unknownModel } from '../../ServerContext.js';
import type { EmbeddingQueue } from '../../scheduler/EmbeddingQueue.js';
import { SchedulerRefusal } from '../../scheduler/Scheduler.js';
import type { HttpResponse } from '../../transport/Transport.js';
import { type ApiDeps, readyRequest } from '../readyRequest.js';
import { sendJson } from '../sendJson.js';
import { type EmbeddingRequest, type EncodingFormat, parseEmbeddingRequest } from './embeddingRequest.js';

/** A checked request, with its inputs' tokens counted. */
type Counted = EmbeddingRequest & { tokens: number };

/**
 * POST /v1/embeddings: vectors of the loaded model, through the same door as chats: the key's
 * requests and tokens per minute (charged the inputs' exact token count) and generations at once,
 * then the embedding queue. An input longer than the model reads is refused, never truncated.
 */
export async function handleEmbeddings(deps: ApiDeps, identity: Identity, response: HttpResponse) {
  const ready = await readyRequest(deps, identity.clientKey, response, 'openai', (ctx) =>
    ctx.embeddings === undefined ? NO_EMBEDDINGS : undefined,
  );
  if (ready === undefined) return;
  const { ctx, body, fail } = ready;
  const queue = ctx.embeddings as EmbeddingQueue;
  const request = await readRequest(ctx, queue, body).catch(refusalOfEngineError);
  if ('code' in request) return fail(request);
  const refusal = await embedAdmitted(ctx, queue, identity.clientKey, request, response);
  if (refusal !== undefined) fail(refusal);
}

const NO_EMBEDDINGS: Refusal = {
  code: 'not_found',
  message:
    'Embeddings are not served by this engine: with upstream engines (--upstream), ask an upstream server for them directly (llama-server --embeddings, or vLLM)',
};

/** The body, checked against the model: its name, its vector width and vocabulary, and each input's length. */
async function readRequest(ctx: ServerContext, queue: EmbeddingQueue, body: unknown) {
  const { dimensions, vocabularySize } = queue.embedder;
  const parsed = parseEmbeddingRequest(body, { dimensions, vocabularySize });
  if ('code' in parsed) return parsed;
  const noSuchModel = unknownModel(ctx, parsed.model);
  if (noSuchModel !== undefined) return { ...noSuchModel, param: 'model' };
  const tokens = await countInputTokens(queue, parsed);
  return typeof tokens === 'number' ? { ...parsed, tokens } : tokens;
}

/** Each input's tokens as the model reads it (its start and end tokens included), refusing one too long. */
async function countInputTokens(queue: EmbeddingQueue, { inputs, paramOf }: EmbeddingRequest) {
  const { maxInputTokens } = queue.embedder;
  let total = 0;
  for (const [index, input] of inputs.entries()) {
    const tokens = await queue.embedder.countTokens(input);
    if (tokens > maxInputTokens) {
      const where = paramOf(index);
      const message = `${where} has ${tokens} tokens; the model embeds at most ${maxInputTokens} (its context size): shorten or split it`;
      return { code: 'context_overflow', message, param: where } satisfies Refusal;
    }
    total += tokens;
  }
  return total;
}

/** Charges the key, waits for the queue, answers; a client gone cancels the work and is sent nothing. */
async function embedAdmitted(
  ctx: ServerContext,
  queue: EmbeddingQueue,
  clientKey: string,
  request: Counted,
  response: HttpResponse,
): Promise<Refusal | undefined> {
  const refused = await ctx.limiter.admitGeneration(clientKey, request.tokens, { requestCounted: true });
  if (refused !== undefined) return refused;
  const abort = new AbortController();
  response.onAborted(() => abort.abort());
  // Gone while its body was read or its tokens counted: nothing to compute for it.
  if (response.aborted) abort.abort();
  try {
    const vectors = await queue.embed(clientKey, request.inputs, abort.signal);
    ctx.metrics.embeddingRequests.inc();
    ctx.metrics.embeddingTokens.inc(request.tokens);
    sendJson(response, embeddingListOf(vectors, request, request.model ?? ctx.engineInfo.modelName));
    return undefined;
  } catch (error) {
    if (abort.signal.aborted) return undefined;
    if (error instanceof SchedulerRefusal) {
      return { code: error.code, message: error.message, retryAfterMs: error.retryAfterMs ?? 1000 };
    }
    return refusalOfEngineError(error);
  } finally {
    ctx.limiter.settleGeneration(clientKey, request.tokens, request.tokens).catch((error: unknown) => {
      ctx.log.warn({ err: error }, 'could not settle an embedding reservation');
    });
  }
}

/** An engine failure named with a code (the embedding context could not be made, a shutdown) as a refusal; others are thrown on. */
function refusalOfEngineError(error: unknown): Refusal {
  if (error instanceof EngineError) return { code: error.code, message: error.message };
  throw error;
}

/** OpenAI's answer: floats, or each vector as base64 of little-endian float32 (what the `openai` package asks for). */
function embeddingListOf(vectors: readonly number[][], { encoding, tokens }: Counted, model: string) {
  return {
    object: 'list',
    data: vectors.map((vector, index) => ({ object: 'embedding', index, embedding: encode(vector, encoding) })),
    model,
    usage: { prompt_tokens: tokens, total_tokens: tokens },
  };
}

function encode(vector: readonly number[], encoding: EncodingFormat): readonly number[] | string {
  if (encoding === 'float') return vector;
  const bytes = Buffer.alloc(vector.length * 4);
  for (const [index, value] of vector.entries()) bytes.writeFloatLE(value, index * 4);
  return bytes.toString('base64');
}
