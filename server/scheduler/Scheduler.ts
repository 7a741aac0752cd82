import { LRUCache } from 'lru-cache';
import type { ErrorCode, FinishReason } from '../../protocol/index.js';
import { ContextOverflowError, type Engine, type EngineResult } from '../engine/Engine.js';
import { Generation, type GenerationInput, type StopCause } from './Generation.js';

export type SchedulerOptions = {
  /** Generations waiting for a sequence; past it, submit refuses with queue_full. */
  maxQueued: number;
  /** Longest a generation may run before it ends with finish 'timeout'. */
  maxGenerationMs: number;
};

export type CancelStatus = 'cancelled' | 'not_found' | 'already_done';

export class SchedulerRefusal extends Error {
  override name = 'SchedulerRefusal';
  constructor(
    readonly code: Extract<ErrorCode, 'queue_full' | 'shutting_down'>,
    message: string,
    readonly retryAfterMs?: number,
  ) {
    super(message);
  }
}

const FINISHED_KEPT = 1000;
const FINISHED_TTL_MS = 5 * 60_000;

/**
 * Puts generations on the engine's sequences: runs one per free sequence, queues the rest,
 * and frees a sequence the moment its generation ends, is cancelled or times out.
 */
export class Scheduler {
  private readonly queue: Generation[] = [];
  private readonly running = new Map<number, Generation>();
  private readonly freeSlots: number[];
  private readonly finished = new LRUCache<string, Generation>({ max: FINISHED_KEPT, ttl: FINISHED_TTL_MS });
  private averageRunMs = 1000;
  private accepting = true;
  private idleWaiters: Array<() => void> = [];

  constructor(
    private readonly engine: Engine,
    private readonly options: SchedulerOptions,
  ) {
    this.freeSlots = Array.from({ length: engine.info.sequences }, (_, slot) => slot);
  }

  get runningCount(): number {
    return this.running.size;
  }

  get queuedCount(): number {
    return this.queue.length;
  }

  /** Queues a generation (and starts it when a sequence is free); throws SchedulerRefusal. */
  submit(input: GenerationInput): Generation {
    if (!this.accepting) throw new SchedulerRefusal('shutting_down', 'The server is shutting down');
    if (this.freeSlots.length === 0 && this.queue.length >= this.options.maxQueued) {
      const retryAfterMs = this.estimateWaitMs(this.queue.length + 1);
      throw new SchedulerRefusal('queue_full', `The queue is full (${this.queue.length} waiting)`, retryAfterMs);
    }
    const generation = new Generation(input);
    this.queue.push(generation);
    return generation;
  }

  /** Starts what can start and tells the queued their place; call after submit once listeners are on. */
  pump(): void {
    while (this.freeSlots.length > 0 && this.queue.length > 0) {
      const generation = this.queue.shift() as Generation;
      const slot = this.freeSlots.pop() as number;
      if (!generation.announced) generation.markQueued(0);
      void this.run(generation, slot);
    }
    for (const [index, generation] of this.queue.entries()) generation.markQueued(index + 1);
  }

  get(genId: string): Generation | undefined {
    return this.findLive(genId) ?? this.finished.get(genId);
  }

  cancel(genId: string, cause: StopCause = 'cancelled'): CancelStatus {
    const generation = this.get(genId);
    if (generation === undefined) return 'not_found';
    if (generation.state === 'done') return 'already_done';
    this.stop(generation, cause);
    return 'cancelled';
  }

  /** Stops a generation: a queued one leaves the queue at once, a running one is aborted. */
  stop(generation: Generation, cause: StopCause): void {
    if (generation.state === 'queued') {
      const index = this.queue.indexOf(generation);
      if (index !== -1) this.queue.splice(index, 1);
      generation.stopCause = cause;
      this.conclude(generation, { stop: 'aborted', promptTokens: 0, completionTokens: 0 });
      this.pump();
    } else if (generation.state === 'running') {
      generation.stopCause ??= cause;
      generation.abortController.abort();
    }
  }

  /** Refuses new work, cancels the queued, lets running ones go on for up to graceMs, then stops them. */
  async drain(graceMs: number): Promise<void> {
    this.accepting = false;
    for (const generation of [...this.queue]) this.stop(generation, 'cancelled');
    const timer = setTimeout(() => {
      for (const generation of this.running.values()) this.stop(generation, 'cancelled');
    }, graceMs);
    await this.whenIdle();
    clearTimeout(timer);
  }

  private async run(generation: Generation, slot: number): Promise<void> {
    this.running.set(slot, generation);
    generation.markStarted();
    const timer = setTimeout(() => this.stop(generation, 'timeout'), this.options.maxGenerationMs);
    try {
      const result = await this.engine.generate({
        slot,
        messages: generation.messages,
        params: generation.params,
        signal: generation.abortController.signal,
        onChunk: (chunk) => generation.addChunk(chunk.text, chunk.channel, chunk.tokens),
      });
      this.conclude(generation, result);
    } catch (error) {
      this.concludeWithError(generation, error);
    } finally {
      clearTimeout(timer);
      this.running.delete(slot);
      this.freeSlots.push(slot);
      this.pump();
      if (this.running.size === 0) this.notifyIdle();
    }
  }

  private conclude(generation: Generation, result: EngineResult, error?: { code: ErrorCode; message: string }): void {
    const now = performance.now();
    const started = generation.startedAt ?? now;
    if (generation.startedAt !== undefined) {
      this.averageRunMs = this.averageRunMs * 0.8 + (now - started) * 0.2;
    }
    generation.finish({
      finish: error === undefined ? finishOf(result, generation.stopCause) : 'error',
      usage: { promptTokens: result.promptTokens, completionTokens: generation.completionTokens },
      timings: {
        queuedMs: round(started - generation.createdAt),
        ttftMs: generation.firstChunkAt === undefined ? null : round(generation.firstChunkAt - started),
        totalMs: round(now - generation.createdAt),
      },
      ...(error === undefined ? {} : { error }),
    });
    this.finished.set(generation.id, generation);
  }

  private concludeWithError(generation: Generation, error: unknown): void {
    const code: ErrorCode = error instanceof ContextOverflowError ? 'context_overflow' : 'model_error';
    const message = error instanceof Error ? error.message : String(error);
    this.conclude(generation, { stop: 'stop', promptTokens: 0, completionTokens: 0 }, { code, message });
  }

  private findLive(genId: string): Generation | undefined {
    for (const generation of this.running.values()) if (generation.id === genId) return generation;
    return this.queue.find((generation) => generation.id === genId);
  }

  /** Time until `position` queued generations have had a sequence, from recent run times. */
  private estimateWaitMs(position: number): number {
    const rounds = Math.ceil(position / Math.max(1, this.engine.info.sequences));
    return Math.max(100, Math.round(rounds * this.averageRunMs));
  }

  private whenIdle(): Promise<void> {
    if (this.running.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private notifyIdle(): void {
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const resolve of waiters) resolve();
  }
}

function finishOf(result: EngineResult, cause: StopCause | undefined): FinishReason {
  if (result.stop === 'aborted') return cause ?? 'cancelled';
  return result.stop;
}

function round(ms: number): number {
  return Math.round(ms * 10) / 10;
}
