import type { GenerationResume } from '../../../protocol/index.js';
import type { ServerContext } from '../../ServerContext.js';
import type { Connection } from '../Connection.js';

/**
 * generation.resume: replays what came after `afterSeq` (merged into one frame per run of a
 * channel), then streams the rest live. Budgeted per key: each replays a whole answer.
 */
export function resumeGeneration(ctx: ServerContext, connection: Connection, frame: GenerationResume): void {
  const generation = ctx.scheduler.get(frame.genId);
  if (generation === undefined || !connection.sessions.has(generation.sessionId)) {
    const message = 'No such generation (it ended too long ago, or its session is not open here)';
    connection.sendError('not_found', message, { id: frame.id, genId: frame.genId });
    return;
  }
  const refusal = ctx.limiter.admitResume(connection.identity.clientKey);
  if (refusal !== undefined) {
    connection.refuse(refusal, frame.id);
    return;
  }
  const genId = generation.id;
  connection.replay(generation, frame.afterSeq);
  if (generation.outcome !== undefined) {
    connection.send({ type: 'generation.done', genId, ...generation.outcome });
    return;
  }
  connection.follow(generation, frame.id);
}
