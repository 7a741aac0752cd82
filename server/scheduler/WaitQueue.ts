import { LRUCache } from 'lru-cache';
import type { Generation } from './Generation.js';
import type { QueuePolicy } from './policies/QueuePolicy.js';

/** Clients remembered for when they were last served, beyond which a client counts as new. */
const SERVED_CLIENTS_REMEMBERED = 100_000;

/**
 * The generations waiting for a sequence, kept per client. Clients rotate by when they were
 * last served: the one served longest ago (or never) comes first.
 */
export class WaitQueue {
  private readonly byClient = new Map<string, Generation[]>();
  private readonly lastServed = new LRUCache<string, number>({ max: SERVED_CLIENTS_REMEMBERED });
  private clock = 0;
  private count = 0;

  constructor(private readonly policy: QueuePolicy) {}

  get size(): number {
    return this.count;
  }

  sizeOf(clientKey: string): number {
    return this.byClient.get(clientKey)?.length ?? 0;
  }

  add(generation: Generation): void {
    const queue = this.byClient.get(generation.clientKey);
    if (queue === undefined) this.byClient.set(generation.clientKey, [generation]);
    else queue.push(generation);
    this.count += 1;
  }

  remove(generation: Generation): boolean {
    const queue = this.byClient.get(generation.clientKey);
    const index = queue?.indexOf(generation) ?? -1;
    if (queue === undefined || index === -1) return false;
    queue.splice(index, 1);
    this.count -= 1;
    if (queue.length === 0) this.byClient.delete(generation.clientKey);
    return true;
  }

  /** Takes the generation the policy serves next. */
  takeNext(): Generation | undefined {
    const next = this.order()[0];
    if (next === undefined) return undefined;
    this.remove(next);
    this.lastServed.set(next.clientKey, ++this.clock);
    return next;
  }

  /** Everything waiting, in the order it will be served. */
  order(): Generation[] {
    return this.policy({ ring: this.ring(), byClient: this.byClient });
  }

  find(genId: string): Generation | undefined {
    for (const queue of this.byClient.values()) {
      const found = queue.find((generation) => generation.id === genId);
      if (found !== undefined) return found;
    }
    return undefined;
  }

  private ring(): string[] {
    const servedAt = (client: string) => this.lastServed.peek(client) ?? 0;
    const oldest = (client: string) => this.byClient.get(client)?.[0]?.createdAt ?? 0;
    return [...this.byClient.keys()].sort((a, b) => servedAt(a) - servedAt(b) || oldest(a) - oldest(b));
  }
}
