import type { GenerationCancel } from '../../../protocol/index.js';
import type { ServerContext } from '../../ServerContext.js';
import type { StoredGeneration } from '../../store/Store.js';
import type { Connection } from '../Connection.js';

/**
 * generation.cancel: stops a queued or running generation of a session open on this connection.
 * Anyone else's generation reads as not_found, so ids reveal nothing. One this process does not
 * run is looked up in the store: ended (before a restart, or on another instance) it is
 * already_done; running on another instance, that instance is asked to stop it, and the ack comes
 * once the store says it has ended.
 */
export async function cancelGeneration(ctx: ServerContext, connection: Connection, frame: GenerationCancel) {
  const generation = ctx.scheduler.get(frame.genId);
  if (generation === undefined) {
    const stored = await ctx.sessions.loadGeneration(frame.genId);
    if (stored === undefined || !connection.sessions.has(stored.sessionId)) {
      connection.send({
        type: 'cancel.ack',
        id: frame.id,
        genId: frame.genId,
        status: 'not_found',
        completionTokens: 0,
      });
      return;
    }
    if (stored.outcome === undefined) await ctx.sessions.requestCancel(frame.genId);
    void ackWhenStoredEnds(ctx, connection, frame, stored);
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

/** How often, and for how long at most, a cancel of a generation on another instance looks for its end. */
const REMOTE_POLL_MS = 100;
const REMOTE_WAIT_MS = 10_000;

/** Sends the cancel.ack once the store records the generation's end (or says not_found if it never does). */
async function ackWhenStoredEnds(
  ctx: ServerContext,
  connection: Connection,
  frame: GenerationCancel,
  first: StoredGeneration,
) {
  const giveUpAt = performance.now() + REMOTE_WAIT_MS;
  let generation: StoredGeneration | undefined = first;
  while (generation?.outcome === undefined && performance.now() < giveUpAt && !connection.detached) {
    await new Promise((resolve) => setTimeout(resolve, REMOTE_POLL_MS));
    generation = await ctx.sessions.loadGeneration(frame.genId).catch(() => generation);
  }
  const outcome = generation?.outcome;
  const status = outcome === undefined ? 'not_found' : outcome.finish === 'cancelled' ? 'cancelled' : 'already_done';
  const completionTokens = outcome?.usage.completionTokens ?? 0;
  connection.send({ type: 'cancel.ack', id: frame.id, genId: frame.genId, status, completionTokens });
}
