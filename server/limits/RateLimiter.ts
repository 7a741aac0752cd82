import type { RateLimitState, Refusal } from '../../protocol/index.js';
import type { BudgetDenial, BudgetLimits, Budgets } from '../store/Store.js';

export type RateLimits = {
  connections: number;
  resumesPerMinute: number;
  concurrent: number;
  requestsPerMinute: number;
  tokensPerMinute: number;
};

/** A limit's refusal: always rate_limited, with the dimension that refused and when to retry. */
export type LimitRefusal = Refusal & {
  code: 'rate_limited';
  dimension: RateLimitState['name'] | 'resumes';
  retryAfterMs: number;
};

/** Retry hint for limits that free up when something ends rather than with time. */
export const RETRY_WHEN_FREED_MS = 1000;

/**
 * Per-client budgets: requests, tokens and resumes per minute (refilling buckets) and generations
 * at once, kept in the store's Budgets so that they hold across instances; open connections,
 * counted per instance. Tokens are reserved when a generation is admitted (an estimate of the
 * prompt plus maxTokens) and settled with the real usage when it ends.
 */
export class RateLimiter {
  private readonly connections = new Map<string, number>();
  private readonly budgetLimits: BudgetLimits;

  constructor(
    private readonly limits: RateLimits,
    private readonly budgets: Budgets,
  ) {
    this.budgetLimits = {
      requests: limits.requestsPerMinute,
      tokens: limits.tokensPerMinute,
      resumes: limits.resumesPerMinute,
      concurrent: limits.concurrent,
    };
  }

  admitConnection(clientKey: string): LimitRefusal | undefined {
    const open = this.connections.get(clientKey) ?? 0;
    if (open >= this.limits.connections) {
      return refusal('connections', `At most ${this.limits.connections} connections per key`, RETRY_WHEN_FREED_MS);
    }
    this.connections.set(clientKey, open + 1);
    return undefined;
  }

  releaseConnection(clientKey: string): void {
    const open = (this.connections.get(clientKey) ?? 0) - 1;
    if (open > 0) this.connections.set(clientKey, open);
    else this.connections.delete(clientKey);
  }

  /** Admits a `generation.resume`: each replays a whole answer, so they are budgeted. */
  async admitResume(clientKey: string, now = Date.now()): Promise<LimitRefusal | undefined> {
    const denial = await this.budgets.take(
      clientKey,
      { limits: this.budgetLimits, take: { resumes: 1 }, concurrent: false },
      now,
    );
    return denial === undefined ? undefined : this.refusalOf(denial);
  }

  /** Drops a client that will not come back (an open-mode connection that closed). */
  forget(clientKey: string): void {
    this.budgets.forget?.(clientKey);
  }

  /** Counts a request against the per-minute budget; HTTP calls it on arrival, before reading the body. */
  async admitRequest(clientKey: string, now = Date.now()): Promise<LimitRefusal | undefined> {
    const denial = await this.budgets.take(
      clientKey,
      { limits: this.budgetLimits, take: { requests: 1 }, concurrent: false },
      now,
    );
    return denial === undefined ? undefined : this.refusalOf(denial);
  }

  /**
   * Admits a generation, reserving `estimatedTokens` and counting its request (unless admitRequest
   * already did, on arrival); returns the refusal instead when over a limit, having taken nothing.
   */
  async admitGeneration(
    clientKey: string,
    estimatedTokens: number,
    { requestCounted = false } = {},
    now = Date.now(),
  ): Promise<LimitRefusal | undefined> {
    const take = requestCounted ? { tokens: estimatedTokens } : { requests: 1, tokens: estimatedTokens };
    const denial = await this.budgets.take(clientKey, { limits: this.budgetLimits, take, concurrent: true }, now);
    return denial === undefined ? undefined : this.refusalOf(denial);
  }

  /** Ends an admitted generation: charges what it used instead of what was reserved. */
  async settleGeneration(clientKey: string, reservedTokens: number, usedTokens: number, now = Date.now()) {
    await this.budgets.settle(clientKey, { concurrent: true, tokens: usedTokens - reservedTokens }, now);
  }

  /**
   * Limit, remaining and time to reset of every dimension, for the `rate_limits` frame. Sessions
   * are counted by the session store (per owner); it passes them in.
   */
  async snapshot(
    clientKey: string,
    sessions: { used: number; limit: number },
    now = Date.now(),
  ): Promise<RateLimitState[]> {
    const levels = await this.budgets.peek(clientKey, this.budgetLimits, now);
    const { limits } = this;
    const open = this.connections.get(clientKey) ?? 0;
    return [
      { name: 'requests', limit: limits.requestsPerMinute, ...levels.requests },
      { name: 'tokens', limit: limits.tokensPerMinute, ...levels.tokens },
      { name: 'concurrent', limit: limits.concurrent, remaining: limits.concurrent - levels.concurrent, resetMs: 0 },
      { name: 'sessions', limit: sessions.limit, remaining: Math.max(0, sessions.limit - sessions.used), resetMs: 0 },
      { name: 'connections', limit: limits.connections, remaining: limits.connections - open, resetMs: 0 },
    ];
  }

  private refusalOf({ dimension, retryAfterMs }: BudgetDenial): LimitRefusal {
    const { limits } = this;
    switch (dimension) {
      case 'concurrent':
        return refusal('concurrent', `At most ${limits.concurrent} generations at once per key`, retryAfterMs);
      case 'requests':
        return refusal('requests', `At most ${limits.requestsPerMinute} requests per minute`, retryAfterMs);
      case 'tokens':
        return refusal('tokens', `At most ${limits.tokensPerMinute} tokens per minute`, retryAfterMs);
      case 'resumes':
        return refusal('resumes', `At most ${limits.resumesPerMinute} resumes per minute`, retryAfterMs);
    }
  }
}

function refusal(dimension: LimitRefusal['dimension'], message: string, retryAfterMs: number): LimitRefusal {
  const retry = Number.isFinite(retryAfterMs) ? retryAfterMs : 60_000;
  return { code: 'rate_limited', dimension, message, retryAfterMs: retry };
}
