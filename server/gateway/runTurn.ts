import { nanoid } from 'nanoid';
import type { ErrorCode, Refusal } from '../../protocol/index.js';
import { admitGeneration } from '../admitGeneration.js';
import type { SamplingParams } from '../engine/Engine.js';
import type { ServerContext } from '../ServerContext.js';
import type { GenerationOutcome } from '../scheduler/Generation.js';
import { promptMessagesOf } from '../sessions/promptMessagesOf.js';
import type { Session } from '../sessions/Session.js';
import type { StoredMessage } from '../store/Store.js';
import type { Connection } from './Connection.js';

export type TurnRequest = {
  /** The client frame's id, echoed in the generation's frames and any error. */
  requestId: string;
  /** What the turn adds before the answer: the user's message, or the results of the last answer's calls. */
  prompt: StoredMessage;
  params: SamplingParams;
};

/**
 * Runs the next generation of a session (for chat.send, and for tool.result once every call has
 * its result): claims the turn in the store, checks the session's bounds and the client's limits,
 * queues it, records its chunks and its end, and streams it to this connection. False when refused
 * (the error frame is sent).
 */
export async function runTurn(
  ctx: ServerContext,
  connection: Connection,
  session: Session,
  { requestId, prompt, params }: TurnRequest,
): Promise<boolean> {
  const genId = `g_${nanoid(16)}`;
  // Claimed first: from here no other instance adds a turn, and the history is the store's.
  const claimed = await ctx.sessions.beginTurn(session, genId, prompt);
  if (claimed !== undefined) {
    const { code, message, activeGenId } = claimed;
    const ids = activeGenId === undefined ? { id: requestId } : { id: requestId, genId: activeGenId };
    connection.sendError(code, message, ids);
    return false;
  }
  const refuse = async (refusal: Refusal) => {
    await ctx.sessions.abandonTurn(session, genId, refusedOutcome(refusal.code, refusal.message));
    connection.refuse(refusal, requestId);
    return false;
  };
  const full = await ctx.sessions.checkTurn(session, prompt.content.length);
  if (full !== undefined) return refuse(full);
  const admission = await admitGeneration(
    ctx,
    {
      id: genId,
      sessionId: session.id,
      clientKey: connection.identity.clientKey,
      messages: promptMessagesOf([...session.messages, prompt]),
      params,
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
          const calledTools = event.outcome.finish === 'tool_calls';
          // A generation after tool results that left nothing (cancelled while queued, failed before
          // its first token) leaves the calls waiting: results sent again run with the same tools.
          const leftCallsWaiting = prompt.role === 'tool' && generation.contentText() === '' && !calledTools;
          // Set before the client hears of the calls, so that its first tool.result finds the turn.
          if (calledTools) session.toolTurn = { params: continuationOf(params), results: new Map() };
          else session.toolTurn = leftCallsWaiting ? { params, results: new Map() } : undefined;
          const calls = calledTools ? generation.toolCalls : [];
          ctx.sessions
            .endTurn(session, genId, prompt, generation.contentText(), event.outcome, calls)
            .catch((error: unknown) => {
              ctx.log.error({ err: error, sessionId: session.id, genId }, 'could not store a finished turn');
            });
        });
        connection.follow(generation, requestId);
      },
    },
  );
  if (!admission.ok) return refuse(admission);
  ctx.scheduler.pump();
  return true;
}

/** The params of the generation after the results: the same tools, but a forced choice is not forced again. */
function continuationOf(params: SamplingParams): SamplingParams {
  const forced = params.toolChoice !== undefined && params.toolChoice !== 'auto' && params.toolChoice !== 'none';
  return forced ? { ...params, toolChoice: 'auto' } : params;
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
