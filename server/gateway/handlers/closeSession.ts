import type { SessionClose } from '../../../protocol/index.js';
import type { ServerContext } from '../../ServerContext.js';
import type { Connection } from '../Connection.js';

/**
 * session.close: the session leaves this connection, freeing its place for another; a running
 * answer goes on. With `forget` the session is deleted too, giving its place and characters back
 * to the key's budget; otherwise it stays reattachable until it expires.
 */
export async function closeSession(ctx: ServerContext, connection: Connection, frame: SessionClose): Promise<void> {
  if (!connection.sessions.delete(frame.sessionId)) {
    connection.sendError('not_found', 'No such session on this connection', { id: frame.id });
    return;
  }
  if (frame.forget === true) await ctx.sessions.forget(frame.sessionId);
  connection.send({ type: 'session.closed', id: frame.id, sessionId: frame.sessionId });
}
