import type { SessionOpen } from '../../../protocol/index.js';
import type { ServerContext } from '../../ServerContext.js';
import type { Connection } from '../Connection.js';

/** session.open: creates a session, or reattaches one by id and resume token. */
export async function openSession(ctx: ServerContext, connection: Connection, frame: SessionOpen): Promise<void> {
  const { config } = ctx;
  const { ownerKey } = connection.identity;
  if (!connection.sessions.has(frame.sessionId ?? '') && connection.sessions.size >= config.maxSessionsPerConnection) {
    connection.sendError('forbidden', `A connection may hold at most ${config.maxSessionsPerConnection} sessions`, {
      id: frame.id,
    });
    return;
  }
  if (frame.sessionId !== undefined) {
    const session =
      frame.resumeToken === undefined
        ? undefined
        : await ctx.sessions.reattach(frame.sessionId, frame.resumeToken, ownerKey);
    if (session === undefined) {
      connection.sendError('not_found', 'No session with that id and resume token', { id: frame.id });
      return;
    }
    connection.sessions.add(session.id);
    connection.send({
      type: 'session.opened',
      id: frame.id,
      sessionId: session.id,
      resumeToken: frame.resumeToken as string,
      resumed: true,
      history: session.history(),
    });
    return;
  }
  if ((frame.system?.length ?? 0) > config.maxMessageChars) {
    connection.sendError('payload_too_large', `system may be at most ${config.maxMessageChars} characters`, {
      id: frame.id,
    });
    return;
  }
  const created = await ctx.sessions.create(ownerKey, frame.system);
  if ('code' in created) {
    connection.refuse(created, frame.id);
    return;
  }
  const { session, resumeToken } = created;
  connection.sessions.add(session.id);
  connection.send({
    type: 'session.opened',
    id: frame.id,
    sessionId: session.id,
    resumeToken,
    resumed: false,
    history: session.history(),
  });
}
