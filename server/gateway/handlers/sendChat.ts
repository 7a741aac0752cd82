import { nanoid } from 'nanoid';
import type { ChatSend } from '../../../protocol/index.js';
import { admitGeneration } from '../../admitGeneration.js';
import type { ChatMessage } from '../../engine/Engine.js';
import { maxTokensAllowed, type ServerContext } from '../../ServerContext.js';
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
  const full = ctx.sessions.checkTurn(session, frame.content.length);
  if (full !== undefined) {
    connection.refuse(full, frame.id);
    return;
  }
  const maxTokens = frame.params?.maxTokens ?? Math.min(config.defaultMaxTokens, maxTokensAllowed(ctx));
  if (maxTokens > maxTokensAllowed(ctx)) {
    const message = `params.maxTokens may be at most ${maxTokensAllowed(ctx)} (--max-tokens, and the context size)`;
    connection.sendError('bad_frame', message, { id: frame.id });
    return;
  }
  const messages = session.promptWith(frame.content);
  const userMessage = messages.at(-1) as ChatMessage;
  const admission = admitGeneration(ctx, {
    id: `g_${nanoid(16)}`,
    sessionId: session.id,
    clientKey,
    messages,
    params: { ...frame.params, maxTokens },
  });
  if (!admission.ok) {
    connection.refuse(admission, frame.id);
    return;
  }
  const { generation } = admission;
  session.activeGenId = generation.id;
  // Before the connection's own listener: the history is recorded when the client reads generation.done.
  generation.subscribe((event) => {
    if (event.kind === 'done') ctx.sessions.addTurn(session, userMessage, generation.contentText());
  });
  connection.follow(generation, frame.id);
  ctx.scheduler.pump();
}
