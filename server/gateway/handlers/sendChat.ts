import type { ChatSend, Refusal } from '../../../protocol/index.js';
import { checkResponseFormat } from '../../engine/checkResponseFormat.js';
import { checkTools } from '../../engine/checkTools.js';
import { refuseLogprobs } from '../../engine/logprobsSupport.js';
import { maxTokensAllowed, type ServerContext, unknownModel } from '../../ServerContext.js';
import type { Connection } from '../Connection.js';
import { runTurn } from '../runTurn.js';
import { idleSession } from './idleSession.js';

/** chat.send: queues the next turn of a session and streams it to this connection. */
export async function sendChat(ctx: ServerContext, connection: Connection, frame: ChatSend): Promise<void> {
  const { config } = ctx;
  const busy = 'This session is already generating; wait for generation.done or cancel it';
  const session = await idleSession(ctx, connection, frame, busy);
  if (session === undefined) return;
  if (frame.content.length > config.maxMessageChars) {
    connection.sendError('payload_too_large', `content may be at most ${config.maxMessageChars} characters`, {
      id: frame.id,
    });
    return;
  }
  const maxTokens = frame.params?.maxTokens ?? Math.min(config.defaultMaxTokens, maxTokensAllowed(ctx));
  if (maxTokens > maxTokensAllowed(ctx)) {
    const message = `params.maxTokens may be at most ${maxTokensAllowed(ctx)} (--max-tokens, and the context size)`;
    connection.sendError('bad_frame', message, { id: frame.id });
    return;
  }
  const refusal =
    checkResponseFormat(frame.params?.responseFormat, 'params.responseFormat.schema') ??
    checkToolParams(frame) ??
    unknownModel(ctx, frame.params?.model) ??
    (frame.params?.logprobs === undefined
      ? undefined
      : refuseLogprobs(ctx.engineInfo, ctx.tokenizer?.vocabularySize, frame.params.logprobs, {
          logprobs: 'params.logprobs',
          top: 'params.logprobs.top',
        }));
  if (refusal !== undefined) {
    connection.refuse(refusal, frame.id);
    return;
  }
  const waiting = session.waitingCalls();
  if (waiting.length > 0) {
    const ids = waiting.map((call) => call.id).join(', ');
    connection.sendError('bad_frame', `The last answer's tool calls wait for their results (tool.result): ${ids}`, {
      id: frame.id,
    });
    return;
  }
  await runTurn(ctx, connection, session, {
    requestId: frame.id,
    prompt: { role: 'user', content: frame.content },
    params: { ...frame.params, maxTokens },
  });
}

/** Tools the grammar cannot enforce or over a bound; a JSON response format beside tools the model may call. */
function checkToolParams({ params }: ChatSend): Refusal | undefined {
  const tools = params?.tools ?? [];
  const refusal = checkTools(tools, params?.toolChoice, 'params.tools');
  if (refusal !== undefined || tools.length === 0 || params?.toolChoice === 'none') return refusal;
  const format = params?.responseFormat?.type;
  if (format === undefined || format === 'text') return undefined;
  const message = 'params.responseFormat: cannot be combined with tools unless toolChoice is "none"';
  return { code: 'unsupported_parameter', message, param: 'params.responseFormat' };
}
