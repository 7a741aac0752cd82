import { nanoid } from 'nanoid';
import type { ChatSend } from '../../../protocol/index.js';
import type { ChatMessage } from '../../engine/Engine.js';
import type { ServerContext } from '../../ServerContext.js';
import type { Generation } from '../../scheduler/Generation.js';
import { SchedulerRefusal } from '../../scheduler/Scheduler.js';
import type { Connection } from '../Connection.js';

/** chat.send: queues the next turn of a session and streams it to this connection. */
export function sendChat(ctx: ServerContext, connection: Connection, frame: ChatSend): void {
  const { config } = ctx;
  const { clientKey } = connection.identity;
  const session = connection.sessions.has(frame.sessionId) ? ctx.sessions.get(frame.sessionId) : undefined;
  if (session === undefined) {
    connection.sendError('not_found', 'No such session on this connection; open it first', { id: frame.id });
    return;
  }
  if (session.activeGenId !== undefined) {
    const message = 'This session is already generating; wait for generation.done or cancel it';
    connection.sendError('session_busy', message, { id: frame.id, genId: session.activeGenId });
    return;
  }
  if (frame.content.length > config.maxMessageChars) {
    connection.sendError('payload_too_large', `content may be at most ${config.maxMessageChars} characters`, {
      id: frame.id,
    });
    return;
  }
  const maxTokens = frame.params?.maxTokens ?? config.defaultMaxTokens;
  if (maxTokens > config.maxTokens) {
    connection.sendError('bad_frame', `params.maxTokens may be at most ${config.maxTokens}`, { id: frame.id });
    return;
  }
  const messages = session.promptWith(frame.content);
  const reservedTokens = estimateTokens(messages) + maxTokens;
  const refusal = ctx.limiter.admitGeneration(clientKey, reservedTokens);
  if (refusal !== undefined) {
    connection.sendError('rate_limited', refusal.message, { id: frame.id, retryAfterMs: refusal.retryAfterMs });
    return;
  }
  let generation: Generation;
  try {
    generation = ctx.scheduler.submit({
      id: `g_${nanoid(16)}`,
      sessionId: session.id,
      clientKey,
      messages,
      params: { ...frame.params, maxTokens },
    });
  } catch (error) {
    ctx.limiter.settleGeneration(clientKey, reservedTokens, 0);
    if (!(error instanceof SchedulerRefusal)) throw error;
    const details =
      error.retryAfterMs === undefined ? { id: frame.id } : { id: frame.id, retryAfterMs: error.retryAfterMs };
    connection.sendError(error.code, error.message, details);
    return;
  }
  session.activeGenId = generation.id;
  // Before the connection's own listener: the history and the budget are settled when the
  // client reads generation.done (and the rate_limits frame after it).
  generation.subscribe((event) => {
    if (event.kind !== 'done') return;
    session.endTurn(frame.content, generation.contentText());
    const { promptTokens, completionTokens } = event.outcome.usage;
    ctx.limiter.settleGeneration(clientKey, reservedTokens, promptTokens + completionTokens);
  });
  connection.follow(generation, frame.id);
  ctx.scheduler.pump();
}

/** A generous guess before tokenizing: about three characters a token. */
function estimateTokens(messages: readonly ChatMessage[]): number {
  return Math.ceil(messages.reduce((sum, message) => sum + message.content.length, 0) / 3);
}
