import type { Refusal } from '../../protocol/index.js';
import type { ModelTokenizer } from '../engine/Engine.js';
import { unknownModel } from '../ServerContext.js';
import type { HttpResponse } from '../transport/Transport.js';
import { type ApiDeps, readyRequest } from './readyRequest.js';
import { sendJson } from './sendJson.js';
import { parseDetokenizeRequest, parseTokenizeRequest } from './tokenizeRequest.js';

export type TokenizeKind = 'tokenize' | 'detokenize';

/**
 * POST /tokenize (`{content, add_special?, parse_special?, with_pieces?}` → `{tokens}`) and POST
 * /detokenize (`{tokens}` → `{content}`), as llama-server has them, with the loaded model's
 * tokenizer. No model compute: they count against the key's requests per minute only.
 */
export async function handleTokenize(
  deps: ApiDeps,
  kind: TokenizeKind,
  clientKey: string,
  response: HttpResponse,
): Promise<void> {
  const ready = await readyRequest(deps, clientKey, response, 'plain', (ctx) =>
    ctx.tokenizer === undefined ? NO_TOKENIZER : undefined,
  );
  if (ready === undefined) return;
  const { ctx, body, fail } = ready;
  const tokenizer = ctx.tokenizer as ModelTokenizer;
  const answer = kind === 'tokenize' ? tokenize(tokenizer, body) : detokenize(tokenizer, body);
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
