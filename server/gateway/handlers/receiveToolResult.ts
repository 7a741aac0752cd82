import type { ToolResult } from '../../../protocol/index.js';
import { maxTokensAllowed, type ServerContext } from '../../ServerContext.js';
import { toolResultsMessage } from '../../store/turns.js';
import type { Connection } from '../Connection.js';
import { runTurn } from '../runTurn.js';
import { idleSession } from './idleSession.js';

/**
 * tool.result: keeps the result of one of the last answer's calls; with the last one, runs the
 * next generation with the calls and every result in the history (see ToolResult).
 */
export async function receiveToolResult(ctx: ServerContext, connection: Connection, frame: ToolResult): Promise<void> {
  const refuse = (message: string) => connection.sendError('bad_frame', message, { id: frame.id });
  const busy = 'This session is generating; send tool results once its generation.done has come';
  const session = await idleSession(ctx, connection, frame, busy);
  if (session === undefined) return;
  if (frame.content.length > ctx.config.maxMessageChars) {
    const message = `content may be at most ${ctx.config.maxMessageChars} characters`;
    connection.sendError('payload_too_large', message, { id: frame.id });
    return;
  }
  const waiting = session.waitingCalls();
  if (waiting.length === 0) return refuse('No tool calls are waiting for results in this session');
  if (!waiting.some((call) => call.id === frame.callId)) {
    const ids = waiting.map((call) => call.id).join(', ');
    return refuse(`No waiting tool call has the id "${frame.callId}" (waiting: ${ids})`);
  }
  // Calls made on another instance (or before a restart): the next generation is offered no tools.
  const defaultParams = { maxTokens: Math.min(ctx.config.defaultMaxTokens, maxTokensAllowed(ctx)) };
  session.toolTurn ??= { params: defaultParams, results: new Map() };
  const turn = session.toolTurn;
  // A result sent again replaces the first: a client whose last result was refused (rate limited,
  // queue full) may send the whole set again.
  turn.results.set(frame.callId, frame.content);
  if (waiting.some((call) => !turn.results.has(call.id))) return;
  const results = waiting.map((call) => ({ callId: call.id, content: turn.results.get(call.id) ?? '' }));
  session.toolTurn = undefined;
  const ran = await runTurn(ctx, connection, session, {
    requestId: frame.id,
    prompt: toolResultsMessage(results),
    params: turn.params,
  });
  // Refused (busy, full, rate-limited): the results stay but this one, which the client may send again.
  if (!ran) {
    turn.results.delete(frame.callId);
    session.toolTurn ??= turn;
  }
}
