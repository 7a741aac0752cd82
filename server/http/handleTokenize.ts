import type { Refusal } from '../../protocol/index.js';
import type { ModelTokenizer } from '../engine/Engine.js';
import { type ServerContext, unknownModel } from '../ServerContext.js';
import type { HttpResponse } from '../transport/Transport.js';
import type { ServerState } from './HttpRoutes.js';
import { readJsonBody } from './readJsonBody.js';
import { sendJson, sendRefusal } from './sendJson.js';
import { parseDetokenizeRequest, parseTokenizeRequest } from './tokenizeRequest.js';

export type TokenizeDeps = { context: ServerContext | undefined; state: ServerState };

export type TokenizeKind = 'tokenize' | 'detokenize';

/**
 * POST /tokenize (`{content, add_special?, parse_special?, with_pieces?}` → `{tokens}`) and POST
 * /detokenize (`{tokens}` → `{content}`), as llama-server has them, with the loaded model's
 * tokenizer. No model compute: they count against the key's requests per minute only.
 */
export async function handleTokenize(
  deps: TokenizeDeps,
  kind: TokenizeKind,
  clientKey: string,
  response: HttpResponse,
): Promise<void> {
  const ctx = deps.context;
  const fail = (refusal: Refusal) => {
    ctx?.metrics.countError(refusal.code);
    sendRefusal(response, refusal);
  };
  if (ctx === undefined || deps.state !== 'ready') {
    if (deps.state === 'shutting_down') return fail({ code: 'shutting_down', message: 'The server is shutting down' });
    return fail({ code: 'not_ready', message: 'The model is still loading', retryAfterMs: 1000 });
  }
  const { tokenizer } = ctx;
  if (tokenizer === undefined) return fail(NO_TOKENIZER);
  const overBudget = await ctx.limiter.admitRequest(clientKey);
  if (overBudget !== undefined) return fail(overBudget);
  const body = await readJsonBody(response, ctx.config.maxBodyBytes);
  if ('code' in body) return fail(body);
  const answer = kind === 'tokenize' ? tokenize(tokenizer, body.value) : detokenize(tokenizer, body.value);
  if ('code' in answer) return fail(answer);
  const noSuchModel = unknownModel(ctx, answer.model);
  if (noSuchModel !== undefined) return fail({ ...noSuchModel, param: 'model' });
  sendJson(response, answer.body);
}

const NO_TOKENIZER: Refusal = {
  code: 'not_found',
  message:
    'Tokenizing is not served by this engine: with upstream engines (--upstream), ask an upstream server directly (llama-server has /tokenize and /detokenize)',
};

type Answer = { body: unknown; model: string | undefined } | Refusal;

function tokenize(tokenizer: ModelTokenizer, value: unknown): Answer {
  const request = parseTokenizeRequest(value);
  if ('code' in request) return request;
  const tokens = tokenizer.tokenize(request.content, request);
  const listed = request.withPieces ? tokens.map((id) => ({ id, piece: tokenizer.pieceOf(id) })) : tokens;
  return { body: { tokens: listed }, model: request.model };
}

function detokenize(tokenizer: ModelTokenizer, value: unknown): Answer {
  const request = parseDetokenizeRequest(value, tokenizer.vocabularySize);
  if ('code' in request) return request;
  return { body: { content: tokenizer.detokenize(request.tokens) }, model: request.model };
}
