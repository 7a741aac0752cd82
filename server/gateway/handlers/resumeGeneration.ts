import type { GenerationResume } from '../../../protocol/index.js';
import type { ServerContext } from '../../ServerContext.js';
import { runsAfter } from '../../scheduler/Generation.js';
import type { StoredGeneration } from '../../store/Store.js';
import type { Connection } from '../Connection.js';

/** How often a generation running on another instance is read again from the store. */
const REMOTE_POLL_MS = 100;

/**
 * generation.resume: replays what came after `afterSeq` (merged into one frame per run of a
 * channel), then streams the rest live. Budgeted per key: each replays a whole answer. A
 * generation this process does not run is read from the store: one that ran before a restart,
 * or runs (or ran) on another instance; one whose instance died ends as interrupted.
 */
export async function resumeGeneration(ctx: ServerContext, connection: Connection, frame: GenerationResume) {
  const generation = ctx.scheduler.get(frame.genId);
  const stored = generation === undefined ? await ctx.sessions.loadGeneration(frame.genId) : undefined;
  const sessionId = generation?.sessionId ?? stored?.sessionId;
  if (sessionId === undefined || !connection.sessions.has(sessionId)) {
    const message = 'No such generation (it ended too long ago, or its session is not open here)';
    connection.sendError('not_found', message, { id: frame.id, genId: frame.genId });
    return;
  }
  const refusal = await ctx.limiter.admitResume(connection.identity.clientKey);
  if (refusal !== undefined) {
    connection.refuse(refusal, frame.id);
    return;
  }
  const genId = frame.genId;
  if (generation === undefined) {
    void streamFromStore(ctx, connection, stored as StoredGeneration, frame.afterSeq);
    return;
  }
  connection.replay(generation, frame.afterSeq);
  if (generation.outcome !== undefined) {
    if (generation.outcome.finish === 'tool_calls') connection.sendToolCalls(genId, generation.toolCalls);
    connection.send({ type: 'generation.done', genId, ...generation.outcome });
    return;
  }
  connection.follow(generation, frame.id);
}

/** Sends a stored generation after `afterSeq`, reading it again until it ends (or the client leaves). */
async function streamFromStore(ctx: ServerContext, connection: Connection, first: StoredGeneration, afterSeq: number) {
  let generation: StoredGeneration | undefined = first;
  let sent = afterSeq;
  while (generation !== undefined && !connection.detached) {
    const runs = runsAfter(generation.chunks, sent);
    connection.replayRuns(generation.id, runs);
    sent = runs.at(-1)?.seq ?? sent;
    if (generation.outcome !== undefined) {
      connection.send({ type: 'generation.done', genId: generation.id, ...generation.outcome });
      return;
    }
    await new Promise((resolve) => setTimeout(resolve, REMOTE_POLL_MS));
    try {
      generation = await ctx.sessions.loadGeneration(generation.id);
    } catch {
      // The store is away for a moment: try again at the next poll.
    }
  }
}
