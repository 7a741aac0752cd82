import type { GenerationCancel } from '../../../protocol/index.js';
import type { ServerContext } from '../../ServerContext.js';
import type { Connection } from '../Connection.js';

/**
 * generation.cancel: stops a queued or running generation of a session open on this connection.
 * Anyone else's generation reads as not_found, so ids reveal nothing. One that ran in another
 * process (before a restart, or on another instance) and has ended is already_done.
 */
export async function cancelGeneration(ctx: ServerContext, connection: Connection, frame: GenerationCancel) {
  const generation = ctx.scheduler.get(frame.genId);
  if (generation === undefined) {
    const stored = await ctx.sessions.loadGeneration(frame.genId);
    const ended = stored?.outcome !== undefined && connection.sessions.has(stored.sessionId);
    const completionTokens = ended ? (stored?.outcome?.usage.completionTokens ?? 0) : 0;
    const status = ended ? 'already_done' : 'not_found';
    connection.send({ type: 'cancel.ack', id: frame.id, genId: frame.genId, status, completionTokens });
    return;
  }
  if (!connection.sessions.has(generation.sessionId)) {
    connection.send({ type: 'cancel.ack', id: frame.id, genId: frame.genId, status: 'not_found', completionTokens: 0 });
    return;
  }
  if (generation.state === 'done') {
    const completionTokens = generation.completionTokens;
    connection.send({ type: 'cancel.ack', id: frame.id, genId: frame.genId, status: 'already_done', completionTokens });
    return;
  }
  connection.ackWhenDone(generation, frame.id);
  ctx.scheduler.cancel(generation.id);
}
