import { LRUCache } from 'lru-cache';
import type { RateLimitState, Refusal } from '../../protocol/index.js';
import { TokenBucket } from './TokenBucket.js';

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

type ClientUsage = {
  connections: number;
  resumes: TokenBucket;
  concurrent: number;
  requests: TokenBucket;
  tokens: TokenBucket;
};

/** Retry hint for limits that free up when something ends rather than with time. */
const RETRY_WHEN_FREED_MS = 1000;
const CLIENTS_REMEMBERED = 100_000;

/**
 * Per-client budgets: open connections and concurrent generations (counts), requests
 * and tokens per minute (refilling buckets). Tokens are reserved when a generation is admitted
 * (an estimate of the prompt plus maxTokens) and settled with the real usage when it ends.
 */
export class RateLimiter {
  private readonly clients = new LRUCache<string, ClientUsage>({ max: CLIENTS_REMEMBERED });

  constructor(private readonly limits: RateLimits) {}

  admitConnection(clientKey: string): LimitRefusal | undefined {
    const usage = this.usage(clientKey);
    if (usage.connections >= this.limits.connections) {
      return refusal('connections', `At most ${this.limits.connections} connections per key`, RETRY_WHEN_FREED_MS);
    }
    usage.connections += 1;
    return undefined;
  }

  releaseConnection(clientKey: string): void {
    const usage = this.usage(clientKey);
    usage.connections = Math.max(0, usage.connections - 1);
  }

  /** Admits a `generation.resume`: each replays a whole answer, so they are budgeted. */
  admitResume(clientKey: string, now = Date.now()): LimitRefusal | undefined {
    return this.takeOne(this.usage(clientKey, now).resumes, 'resumes', now);
  }

  /** Drops a client that will not come back (an open-mode connection that closed). */
  forget(clientKey: string): void {
    this.clients.delete(clientKey);
  }

  /** Counts a request against the per-minute budget; HTTP calls it on arrival, before reading the body. */
  admitRequest(clientKey: string, now = Date.now()): LimitRefusal | undefined {
    return this.takeOne(this.usage(clientKey, now).requests, 'requests', now);
  }

  /** Takes one unit of a per-minute budget, or says how long until there is one. */
  private takeOne(bucket: TokenBucket, dimension: 'requests' | 'resumes', now: number): LimitRefusal | undefined {
    const wait = bucket.waitMs(1, now);
    if (wait > 0) return refusal(dimension, `At most ${bucket.perMinute} ${dimension} per minute`, wait);
    bucket.take(1, now);
    return undefined;
  }

  /**
   * Admits a generation, reserving `estimatedTokens` and counting its request (unless admitRequest
   * already did, on arrival); returns the refusal instead when over a limit, having taken nothing.
   */
  admitGeneration(
    clientKey: string,
    estimatedTokens: number,
    { requestCounted = false } = {},
    now = Date.now(),
  ): LimitRefusal | undefined {
    const usage = this.usage(clientKey, now);
    if (usage.concurrent >= this.limits.concurrent) {
      const message = `At most ${this.limits.concurrent} generations at once per key`;
      return refusal('concurrent', message, RETRY_WHEN_FREED_MS);
    }
    const requestWait = requestCounted ? 0 : usage.requests.waitMs(1, now);
    if (requestWait > 0) {
      return refusal('requests', `At most ${this.limits.requestsPerMinute} requests per minute`, requestWait);
    }
    const tokenWait = usage.tokens.waitMs(Math.min(estimatedTokens, this.limits.tokensPerMinute), now);
    if (tokenWait > 0) {
      return refusal('tokens', `At most ${this.limits.tokensPerMinute} tokens per minute`, tokenWait);
    }
    usage.concurrent += 1;
    if (!requestCounted) usage.requests.take(1, now);
    usage.tokens.take(estimatedTokens, now);
    return undefined;
  }

  /** Ends an admitted generation: charges what it used instead of what was reserved. */
  settleGeneration(clientKey: string, reservedTokens: number, usedTokens: number, now = Date.now()): void {
    const usage = this.usage(clientKey, now);
    usage.concurrent = Math.max(0, usage.concurrent - 1);
    if (usedTokens < reservedTokens) usage.tokens.give(reservedTokens - usedTokens, now);
    else usage.tokens.take(usedTokens - reservedTokens, now);
  }

  /**
   * Limit, remaining and time to reset of every dimension, for the `rate_limits` frame. Sessions
   * are counted by the session store (per owner); it passes them in.
   */
  snapshot(clientKey: string, sessions: { used: number; limit: number }, now = Date.now()): RateLimitState[] {
    const usage = this.usage(clientKey, now);
    const { limits } = this;
    return [
      {
        name: 'requests',
        limit: limits.requestsPerMinute,
        remaining: Math.max(0, usage.requests.remaining(now)),
        resetMs: usage.requests.resetMs(now),
      },
      {
        name: 'tokens',
        limit: limits.tokensPerMinute,
        remaining: Math.max(0, usage.tokens.remaining(now)),
        resetMs: usage.tokens.resetMs(now),
      },
      { name: 'concurrent', limit: limits.concurrent, remaining: limits.concurrent - usage.concurrent, resetMs: 0 },
      { name: 'sessions', limit: sessions.limit, remaining: Math.max(0, sessions.limit - sessions.used), resetMs: 0 },
      { name: 'connections', limit: limits.connections, remaining: limits.connections - usage.connections, resetMs: 0 },
    ];
  }

  private usage(clientKey: string, now = Date.now()): ClientUsage {
    let usage = this.clients.get(clientKey);
    if (usage === undefined) {
      usage = {
        connections: 0,
        resumes: new TokenBucket(this.limits.resumesPerMinute, now),
        concurrent: 0,
        requests: new TokenBucket(this.limits.requestsPerMinute, now),
        tokens: new TokenBucket(this.limits.tokensPerMinute, now),
      };
      this.clients.set(clientKey, usage);
    }
    return usage;
  }
}

function refusal(dimension: LimitRefusal['dimension'], message: string, retryAfterMs: number): LimitRefusal {
  const retry = Number.isFinite(retryAfterMs) ? retryAfterMs : 60_000;
  return { code: 'rate_limited', dimension, message, retryAfterMs: retry };
}
