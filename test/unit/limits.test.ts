import { describe, expect, it } from 'vitest';
import { TicketStore } from '../../server/auth/TicketStore.js';
import { RateLimiter } from '../../server/limits/RateLimiter.js';
import { TokenBucket } from '../../server/limits/TokenBucket.js';

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

  it('reserves tokens at admission and settles them with the real usage', () => {
    const limiter = new RateLimiter(limits);
    expect(limiter.admitGeneration('k', 80, {}, 0)).toBeUndefined();
    expect(limiter.admitGeneration('k', 10, {}, 0)).toMatchObject({ dimension: 'concurrent' });
    limiter.settleGeneration('k', 80, 30, 0);
    const tokens = limiter.snapshot('k', { used: 0, limit: 1 }, 0).find((state) => state.name === 'tokens');
    expect(tokens).toMatchObject({ limit: 100, remaining: 70 });
  });

  it('refuses past the requests and tokens budgets with the wait until they refill', () => {
    const limiter = new RateLimiter(limits);
    limiter.admitGeneration('k', 1, {}, 0);
    limiter.settleGeneration('k', 1, 1, 0);
    expect(limiter.admitRequest('k', 0)).toBeUndefined();
    expect(limiter.admitRequest('k', 0)).toMatchObject({ dimension: 'requests', retryAfterMs: 30_000 });
    expect(limiter.admitGeneration('k', 1, {}, 0)).toMatchObject({ dimension: 'requests' });
    expect(limiter.admitGeneration('k', 1, { requestCounted: true }, 0)).toBeUndefined();
    const other = new RateLimiter(limits);
    expect(other.admitGeneration('k', 150, {}, 0)).toBeUndefined();
    other.settleGeneration('k', 150, 150, 0);
    expect(other.admitGeneration('k', 10, {}, 0)).toMatchObject({ dimension: 'tokens' });
  });

  it('budgets resumes per key, each one replaying a whole answer', () => {
    const limiter = new RateLimiter(limits);
    expect(limiter.admitResume('k', 0)).toBeUndefined();
    expect(limiter.admitResume('k', 0)).toBeUndefined();
    expect(limiter.admitResume('k', 0)).toMatchObject({ dimension: 'resumes', retryAfterMs: 30_000 });
    expect(limiter.admitResume('other', 0)).toBeUndefined();
    expect(limiter.admitResume('k', 30_000)).toBeUndefined();
  });

  it('counts connections per key and frees them', () => {
    const limiter = new RateLimiter(limits);
    expect(limiter.admitConnection('k')).toBeUndefined();
    expect(limiter.admitConnection('k')).toBeUndefined();
    expect(limiter.admitConnection('k')).toMatchObject({ dimension: 'connections' });
    expect(limiter.admitConnection('other')).toBeUndefined();
    limiter.releaseConnection('k');
    expect(limiter.admitConnection('k')).toBeUndefined();
  });
});

describe('TicketStore', () => {
  it('redeems a ticket once, and not after it expires', () => {
    const tickets = new TicketStore(1000);
    const { ticket } = tickets.issue('bot', 0);
    expect(tickets.redeem(ticket, 10)).toBe('bot');
    expect(tickets.redeem(ticket, 10)).toBeUndefined();
    const late = tickets.issue('bot', 0);
    expect(tickets.redeem(late.ticket, 1000)).toBeUndefined();
    expect(tickets.redeem('made-up', 0)).toBeUndefined();
  });
});
