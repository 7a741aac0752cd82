import type { Refusal } from '../protocol/index.js';
import type { ChatMessage } from './engine/Engine.js';
import type { ServerContext } from './ServerContext.js';
import type { Generation, GenerationInput } from './scheduler/Generation.js';
import { SchedulerRefusal } from './scheduler/Scheduler.js';

export type Admission = { ok: true; generation: Generation } | ({ ok: false } & Refusal);

export type AdmitOptions = {
  /** The request was counted on arrival (HTTP), so only its tokens are taken now. */
  requestCounted?: boolean;
  /**
   * Puts the caller's listeners on, in the same turn as the generation is queued: another
   * request's pump() may start it as soon as this function yields, and no frame may go unheard.
   */
  attach: (generation: Generation) => void;
};

/**
 * The one door to the scheduler, for WebSocket and HTTP alike: checks the client's rate limits
 * (the request itself, unless the caller counted it on arrival), reserves its tokens, queues the
 * generation with the caller's listeners on, and settles the reservation with the real usage
 * when it ends. The caller still calls `scheduler.pump()`.
 */
export async function admitGeneration(
  ctx: ServerContext,
  input: GenerationInput,
  { requestCounted = false, attach }: AdmitOptions,
): Promise<Admission> {
  const { clientKey } = input;
  const reservedTokens = estimateTokens(input.messages) + input.params.maxTokens;
  const refusal = await ctx.limiter.admitGeneration(clientKey, reservedTokens, { requestCounted });
  if (refusal !== undefined) return { ok: false, ...refusal };
  const settle = (usedTokens: number) =>
    ctx.limiter.settleGeneration(clientKey, reservedTokens, usedTokens).catch((error: unknown) => {
      ctx.log.warn({ err: error }, 'could not settle a token reservation');
    });
  let generation: Generation;
  try {
    generation = ctx.scheduler.submit(input);
  } catch (error) {
    void settle(0);
    if (!(error instanceof SchedulerRefusal)) throw error;
    return {
      ok: false,
      code: error.code,
      message: error.message,
      ...(error.retryAfterMs === undefined ? {} : { retryAfterMs: error.retryAfterMs }),
    };
  }
  generation.subscribe((event) => {
    if (event.kind !== 'done') return;
    const { promptTokens, completionTokens } = event.outcome.usage;
    void settle(promptTokens + completionTokens);
  });
  attach(generation);
  return { ok: true, generation };
}

/** A generous guess before tokenizing: about three characters a token. */
function estimateTokens(messages: readonly ChatMessage[]): number {
  return Math.ceil(messages.reduce((sum, message) => sum + message.content.length, 0) / 3);
}
