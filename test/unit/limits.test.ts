import { describe, expect, it, vi } from 'vitest';
import { TicketStore } from '../../server/auth/TicketStore.js';
import { RateLimiter } from '../../server/limits/RateLimiter.js';
import { TokenBucket } from '../../server/limits/TokenBucket.js';
import { MemoryBudgets } from '../../server/store/MemoryBudgets.js';
import { MemoryStore } from '../../server/store/MemoryStore.js';

describe('TokenBucket', () => {
  it('refills continuously up to its capacity and tells how long until an amount is there', () => {
    const bucket = new TokenBucket(600, 0);
    bucket.take(600, 0);
    expect(bucket.remaining(0)).toBe(0);
    expect(bucket.waitMs(10, 0)).toBe(1000);
    expect(bucket.remaining(30_000)).toBe(300);
    expect(bucket.resetMs(30_000)).toBe(30_000);
    expect(bucket.waitMs(601, 30_000)).toBe(Number.POSITIVE_INFINITY);
  });
});

describe('RateLimiter', () => {
  const limits = { connections: 2, resumesPerMinute: 2, concurrent: 1, requestsPerMinute: 2, tokensPerMinute: 100 };

  it('reserves tokens at admission and settles them with the real usage', async () => {
    const limiter = new RateLimiter(limits, new MemoryBudgets());
    expect(await limiter.admitGeneration('k', 80, {}, 0)).toBeUndefined();
    expect(await limiter.admitGeneration('k', 10, {}, 0)).toMatchObject({ dimension: 'concurrent' });
    await limiter.settleGeneration('k', 80, 30, 0);
    const tokens = (await limiter.snapshot('k', { used: 0, limit: 1 }, 0)).find((state) => state.name === 'tokens');
    expect(tokens).toMatchObject({ limit: 100, remaining: 70 });
  });

  it('refuses past the requests and tokens budgets with the wait until they refill', async () => {
    const limiter = new RateLimiter(limits, new MemoryBudgets());
    await limiter.admitGeneration('k', 1, {}, 0);
    await limiter.settleGeneration('k', 1, 1, 0);
    expect(await limiter.admitRequest('k', 0)).toBeUndefined();
    expect(await limiter.admitRequest('k', 0)).toMatchObject({ dimension: 'requests', retryAfterMs: 30_000 });
    expect(await limiter.admitGeneration('k', 1, {}, 0)).toMatchObject({ dimension: 'requests' });
    expect(await limiter.admitGeneration('k', 1, { requestCounted: true }, 0)).toBeUndefined();
    const other = new RateLimiter(limits, new MemoryBudgets());
    expect(await other.admitGeneration('k', 150, {}, 0)).toBeUndefined();
    await other.settleGeneration('k', 150, 150, 0);
    expect(await other.admitGeneration('k', 10, {}, 0)).toMatchObject({ dimension: 'tokens' });
  });

  it('budgets resumes per key, each one replaying a whole answer', async () => {
    const limiter = new RateLimiter(limits, new MemoryBudgets());
    expect(await limiter.admitResume('k', 0)).toBeUndefined();
    expect(await limiter.admitResume('k', 0)).toBeUndefined();
    expect(await limiter.admitResume('k', 0)).toMatchObject({ dimension: 'resumes', retryAfterMs: 30_000 });
    expect(await limiter.admitResume('other', 0)).toBeUndefined();
    expect(await limiter.admitResume('k', 30_000)).toBeUndefined();
  });

  it('counts connections per key and frees them', () => {
    const limiter = new RateLimiter(limits, new MemoryBudgets());
    expect(limiter.admitConnection('k')).toBeUndefined();
    expect(limiter.admitConnection('k')).toBeUndefined();
    expect(limiter.admitConnection('k')).toMatchObject({ dimension: 'connections' });
    expect(limiter.admitConnection('other')).toBeUndefined();
    limiter.releaseConnection('k');
    expect(limiter.admitConnection('k')).toBeUndefined();
  });
});

describe('TicketStore', () => {
  it('redeems a ticket once, and not after it expires', async () => {
    vi.useFakeTimers({ toFake: ['Date'], now: 0 });
    try {
      const tickets = new TicketStore(new MemoryStore({ maxSessions: 10 }), 1000);
      const { ticket } = await tickets.issue('bot');
      expect(await tickets.redeem(ticket)).toBe('bot');
      expect(await tickets.redeem(ticket)).toBeUndefined();
      const late = await tickets.issue('bot');
      vi.setSystemTime(1000);
      expect(await tickets.redeem(late.ticket)).toBeUndefined();
      expect(await tickets.redeem('made-up')).toBeUndefined();
    } finally {
      vi.useRealTimers();
    }
  });
});
