import type { Embedder, EmbeddingInput } from '../engine/Engine.js';
import { SchedulerRefusal } from './Scheduler.js';

export type EmbeddingQueueOptions = {
  /** Requests waiting server-wide; past it, a request is refused with queue_full. */
  maxQueued: number;
  /** Requests one client may have waiting. */
  maxQueuedPerClient: number;
};

type Job = { clientKey: string; run: () => Promise<void> };

/**
 * Embedding requests, one at a time in arrival order: the embedding context has one sequence of
 * its own (it takes none of the chat's), but it shares the model's compute, so a flood of them
 * waits here, bounded as the scheduler's queue is, instead of piling up on the native side.
 */
export class EmbeddingQueue {
  private readonly waiting: Job[] = [];
  private readonly waitingPerClient = new Map<string, number>();
  private running = false;
  /** For the retry hint of a refusal: how long a request takes, smoothed. */
  private averageRunMs = 100;

  constructor(
    readonly embedder: Embedder,
    private readonly options: EmbeddingQueueOptions,
  ) {}

  get queuedCount(): number {
    return this.waiting.length;
  }

  /** The vectors once the request's turn comes; throws SchedulerRefusal (queue_full) at once when full. */
  embed(clientKey: string, inputs: readonly EmbeddingInput[], signal: AbortSignal): Promise<number[][]> {
    this.admit(clientKey);
    return new Promise((resolve, reject) => {
      const run = () => this.embedder.embed(inputs, signal).then(resolve, reject);
      this.waiting.push({ clientKey, run });
      this.countWaiting(clientKey, 1);
      this.startNext();
    });
  }

  private admit(clientKey: string): void {
    if (!this.running) return;
    const retryAfterMs = Math.ceil(this.averageRunMs * (this.waiting.length + 1));
    if (this.waiting.length >= this.options.maxQueued) {
      const message = `The embedding queue is full (${this.waiting.length} waiting)`;
      throw new SchedulerRefusal('queue_full', message, retryAfterMs);
    }
    const mine = this.waitingPerClient.get(clientKey) ?? 0;
    if (mine >= this.options.maxQueuedPerClient) {
      const message = `You have ${mine} embedding requests waiting, the most allowed`;
      throw new SchedulerRefusal('queue_full', message, retryAfterMs);
    }
  }

  private startNext(): void {
    if (this.running) return;
    const job = this.waiting.shift();
    if (job === undefined) return;
    this.countWaiting(job.clientKey, -1);
    this.running = true;
    const began = performance.now();
    void job.run().finally(() => {
      this.running = false;
      this.averageRunMs = this.averageRunMs * 0.8 + (performance.now() - began) * 0.2;
      this.startNext();
    });
  }

  private countWaiting(clientKey: string, change: number): void {
    const mine = (this.waitingPerClient.get(clientKey) ?? 0) + change;
    if (mine > 0) this.waitingPerClient.set(clientKey, mine);
    else this.waitingPerClient.delete(clientKey);
  }
}
