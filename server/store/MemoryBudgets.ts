import { LRUCache } from 'lru-cache';
import { RETRY_WHEN_FREED_MS } from '../limits/RateLimiter.js';
import { TokenBucket } from '../limits/TokenBucket.js';
import type { BucketName, BudgetDenial, BudgetLevels, BudgetLimits, BudgetRequest, Budgets } from './Store.js';

type KeyBudget = { buckets: Map<BucketName, TokenBucket>; concurrent: number };

const KEYS_REMEMBERED = 100_000;
const ORDER: readonly BucketName[] = ['requests', 'tokens', 'resumes'];

/** Per-key budgets in this process (the memory and SQLite stores: one instance). */
export class MemoryBudgets implements Budgets {
  private readonly keys = new LRUCache<string, KeyBudget>({ max: KEYS_REMEMBERED });

  async take(key: string, request: BudgetRequest, now = Date.now()): Promise<BudgetDenial | undefined> {
    const budget = this.budgetOf(key, request.limits, now);
    if (request.concurrent && budget.concurrent >= request.limits.concurrent) {
      return { dimension: 'concurrent', retryAfterMs: RETRY_WHEN_FREED_MS };
    }
    for (const name of ORDER) {
      const amount = request.take[name];
      if (amount === undefined || amount <= 0) continue;
      const bucket = bucketOf(budget, name);
      const wait = bucket.waitMs(Math.min(amount, bucket.perMinute), now);
      if (wait > 0) return { dimension: name, retryAfterMs: wait };
    }
    for (const name of ORDER) {
      const amount = request.take[name];
      if (amount !== undefined && amount > 0) bucketOf(budget, name).take(amount, now);
    }
    if (request.concurrent) budget.concurrent += 1;
    return undefined;
  }

  async settle(key: string, { concurrent, tokens }: { concurrent: boolean; tokens: number }, now = Date.now()) {
    const budget = this.keys.get(key);
    if (budget === undefined) return;
    if (concurrent) budget.concurrent = Math.max(0, budget.concurrent - 1);
    const bucket = budget.buckets.get('tokens');
    if (bucket === undefined) return;
    if (tokens < 0) bucket.give(-tokens, now);
    else bucket.take(tokens, now);
  }

  async peek(key: string, limits: BudgetLimits, now = Date.now()): Promise<BudgetLevels> {
    const budget = this.budgetOf(key, limits, now);
    const level = (name: BucketName) => {
      const bucket = bucketOf(budget, name);
      return { remaining: Math.max(0, bucket.remaining(now)), resetMs: bucket.resetMs(now) };
    };
    return {
      requests: level('requests'),
      tokens: level('tokens'),
      resumes: level('resumes'),
      concurrent: budget.concurrent,
    };
  }

  forget(key: string): void {
    this.keys.delete(key);
  }

  private budgetOf(key: string, limits: BudgetLimits, now: number): KeyBudget {
    let budget = this.keys.get(key);
    if (budget === undefined) {
      const buckets = new Map(ORDER.map((name) => [name, new TokenBucket(limits[name], now)] as const));
      budget = { buckets, concurrent: 0 };
      this.keys.set(key, budget);
    }
    return budget;
  }
}

function bucketOf(budget: KeyBudget, name: BucketName): TokenBucket {
  return budget.buckets.get(name) as TokenBucket;
}
