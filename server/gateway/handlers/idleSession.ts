import type { ServerContext } from '../../ServerContext.js';
import type { Session } from '../../sessions/Session.js';
import type { Connection } from '../Connection.js';

/**
 * The session a frame names, once it is open on this connection and not generating; otherwise
 * undefined, with `not_found` or `session_busy` (saying `busyMessage`) sent for the frame.
 */
export async function idleSession(
  ctx: ServerContext,
  connection: Connection,
  frame: { id: string; sessionId: string },
  busyMessage: string,
): Promise<Session | undefined> {
  const session = connection.sessions.has(frame.sessionId) ? await ctx.sessions.get(frame.sessionId) : undefined;
  if (session === undefined) {
    connection.sendError('not_found', 'No such session on this connection; open it first', { id: frame.id });
    return undefined;
  }
  const running = session.activeGenId === undefined ? undefined : ctx.scheduler.get(session.activeGenId);
  if (running !== undefined && running.outcome === undefined) {
    connection.sendError('session_busy', busyMessage, { id: frame.id, genId: session.activeGenId });
    return undefined;
  }
  return session;
}
