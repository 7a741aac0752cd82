import { nanoid } from 'nanoid';
import type { ChatSend, ErrorCode, Refusal } from '../../../protocol/index.js';
import { admitGeneration } from '../../admitGeneration.js';
import { checkResponseFormat } from '../../engine/checkResponseFormat.js';
import type { ChatMessage } from '../../engine/Engine.js';
import { maxTokensAllowed, type ServerContext, unknownModel } from '../../ServerContext.js';
import type { GenerationOutcome } from '../../scheduler/Generation.js';
import type { Connection } from '../Connection.js';

/** chat.send: queues the next turn of a session and streams it to this connection. */
export async function sendChat(ctx: ServerContext, connection: Connection, frame: ChatSend): Promise<void> {
  const { config } = ctx;
  const { clientKey } = connection.identity;
  const session = connection.sessions.has(frame.sessionId) ? await ctx.sessions.get(frame.sessionId) : undefined;
  if (session === undefined) {
    connection.sendError('not_found', 'No such session on this connection; open it first', { id: frame.id });
    return;
  }
  const running = session.activeGenId === undefined ? undefined : ctx.scheduler.get(session.activeGenId);
  if (running !== undefined && running.outcome === undefined) {
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
  const maxTokens = frame.params?.maxTokens ?? Math.min(config.defaultMaxTokens, maxTokensAllowed(ctx));
  if (maxTokens > maxTokensAllowed(ctx)) {
    const message = `params.maxTokens may be at most ${maxTokensAllowed(ctx)} (--max-tokens, and the context size)`;
    connection.sendError('bad_frame', message, { id: frame.id });
    return;
  }
  const badSchema = checkResponseFormat(frame.params?.responseFormat, 'params.responseFormat.schema');
  if (badSchema !== undefined) {
    connection.refuse(badSchema, frame.id);
    return;
  }
  const noSuchModel = unknownModel(ctx, frame.params?.model);
  if (noSuchModel !== undefined) {
    connection.refuse(noSuchModel, frame.id);
    return;
  }
  const userMessage: ChatMessage = { role: 'user', content: frame.content };
  const genId = `g_${nanoid(16)}`;
  // Claimed first: from here no other instance adds a turn, and the history is the store's.
  const claimed = await ctx.sessions.beginTurn(session, genId, userMessage);
  if (claimed !== undefined) {
    const { code, message, activeGenId } = claimed;
    connection.sendError(
      code,
      message,
      activeGenId === undefined ? { id: frame.id } : { id: frame.id, genId: activeGenId },
    );
    return;
  }
  const refuse = async (refusal: Refusal) => {
    await ctx.sessions.abandonTurn(session, genId, refusedOutcome(refusal.code, refusal.message));
    connection.refuse(refusal, frame.id);
  };
  const full = await ctx.sessions.checkTurn(session, frame.content.length);
  if (full !== undefined) return refuse(full);
  const admission = await admitGeneration(
    ctx,
    {
      id: genId,
      sessionId: session.id,
      clientKey,
      messages: [...session.messages, userMessage],
      params: { ...frame.params, maxTokens },
    },
    {
      attach: (generation) => {
        // Before the connection's own listener: the store holds each chunk, and the turn, before
        // the client is sent it (a crash then loses nothing the client saw).
        generation.subscribe((event) => {
          if (event.kind === 'chunk') {
            ctx.sessions.recordChunks(genId, [{ seq: event.seq, text: event.text, channel: event.channel }]);
          }
          if (event.kind !== 'done') return;
          ctx.sessions
            .endTurn(session, genId, userMessage, generation.contentText(), event.outcome)
            .catch((error: unknown) => {
              ctx.log.error({ err: error, sessionId: session.id, genId }, 'could not store a finished turn');
            });
        });
        connection.follow(generation, frame.id);
      },
    },
  );
  if (!admission.ok) return refuse(admission);
  ctx.scheduler.pump();
}

/** The outcome stored for a turn refused before it ran. */
function refusedOutcome(code: ErrorCode, message: string): GenerationOutcome {
  return {
    finish: 'error',
    usage: { promptTokens: 0, completionTokens: 0, cachedPromptTokens: 0 },
    timings: { queuedMs: 0, ttftMs: null, totalMs: 0 },
    error: { code, message },
  };
}
