import { LRUCache } from 'lru-cache';
import type { ErrorCode, FinishReason } from '../../protocol/index.js';
import { ContextOverflowError, type Engine, EngineError, type EngineResult } from '../engine/Engine.js';
import { Generation, type GenerationInput, type StopCause } from './Generation.js';
import type { QueuePolicy } from './policies/QueuePolicy.js';
import { SlotTable } from './SlotTable.js';
import { WaitQueue } from './WaitQueue.js';

export type SchedulerOptions = {
  /** Generations waiting for a sequence, server-wide; past it, submit refuses with queue_full. */
  maxQueued: number;
  /** Generations one client may have waiting. */
  maxQueuedPerClient: number;
  /** Longest a generation may run before it ends with finish 'timeout'. */
  maxGenerationMs: number;
  /** How long a finished generation stays available to cancel (already_done) and resume. */
  keepFinishedMs: number;
  policy: QueuePolicy;
  /** Sees every generation as it is queued (metrics, logs). */
  onSubmit?: (generation: Generation) => void;
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

const FINISHED_KEPT = 10_000;

/**
 * Puts generations on the engine's sequences: runs one per free sequence, queues the rest in
 * the policy's order, and frees a sequence the moment its generation ends, is cancelled or
 * times out.
 */
export class Scheduler {
  private readonly waiting: WaitQueue;
  private readonly slots: SlotTable;
  private readonly running = new Map<string, Generation>();
  private readonly finished: LRUCache<string, Generation>;
  private averageRunMs = 1000;
  private accepting = true;
  private idleWaiters: Array<() => void> = [];

  constructor(
    private readonly engine: Engine,
    private readonly options: SchedulerOptions,
  ) {
    this.waiting = new WaitQueue(options.policy);
    this.slots = new SlotTable(engine.info.sequences);
    this.finished = new LRUCache({ max: FINISHED_KEPT, ttl: Math.max(1, options.keepFinishedMs), ttlAutopurge: true });
  }

  get runningCount(): number {
    return this.running.size;
  }

  get queuedCount(): number {
    return this.waiting.size;
  }

  /** Queues a generation; call pump() once its listeners are on. Throws SchedulerRefusal. */
  submit(input: GenerationInput): Generation {
    if (!this.accepting) throw new SchedulerRefusal('shutting_down', 'The server is shutting down');
    const startsNow = this.slots.freeCount > 0 && this.waiting.size === 0;
    if (!startsNow && this.waiting.size >= this.options.maxQueued) {
      throw this.queueFull(`The queue is full (${this.waiting.size} waiting)`, this.waiting.size + 1);
    }
    if (!startsNow && this.waiting.sizeOf(input.clientKey) >= this.options.maxQueuedPerClient) {
      const mine = this.waiting.sizeOf(input.clientKey);
      throw this.queueFull(`You have ${mine} generations waiting, the most allowed`, mine + 1);
    }
    const generation = new Generation(input);
    this.waiting.add(generation);
    this.options.onSubmit?.(generation);
    return generation;
  }

  /** Starts what can start and tells every waiting generation its place. */
  pump(): void {
    while (this.slots.freeCount > 0) {
      const generation = this.waiting.takeNext();
      if (generation === undefined) break;
      const slot = this.slots.acquire(generation.sessionId) as number;
      if (!generation.announced) generation.markQueued(0);
      void this.run(generation, slot);
    }
    for (const [index, generation] of this.waiting.order().entries()) generation.markQueued(index + 1);
  }

  get(genId: string): Generation | undefined {
    return this.running.get(genId) ?? this.waiting.find(genId) ?? this.finished.get(genId);
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
      this.waiting.remove(generation);
      generation.stopCause = cause;
      this.conclude(generation, { stop: 'aborted', promptTokens: 0, cachedPromptTokens: 0 });
      this.pump();
    } else if (generation.state === 'running') {
      generation.stopCause ??= cause;
      generation.abortController.abort();
    }
  }

  /** Refuses new work, cancels the queued, lets running ones go on for up to graceMs, then stops them. */
  async drain(graceMs: number): Promise<void> {
    this.accepting = false;
    for (const generation of this.waiting.order()) this.stop(generation, 'cancelled');
    const timer = setTimeout(() => {
      for (const generation of this.running.values()) this.stop(generation, 'cancelled');
    }, graceMs);
    await this.whenIdle();
    clearTimeout(timer);
  }

  private async run(generation: Generation, slot: number): Promise<void> {
    this.running.set(generation.id, generation);
    generation.markStarted();
    const timer = setTimeout(() => this.stop(generation, 'timeout'), this.options.maxGenerationMs);
    try {
      const result = await this.engine.generate({
        slot,
        format: generation.format,
        messages: generation.messages,
        params: generation.params,
        signal: generation.abortController.signal,
        affinityKey: generation.sessionId,
        onToolCallChunk: (chunk) => generation.addToolCallChunk(chunk),
        onChunk: (chunk) => generation.addChunk(chunk.text, chunk.channel, chunk.tokens, chunk.logprobs),
      });
      this.conclude(generation, result);
    } catch (error) {
      this.concludeWithError(generation, error);
    } finally {
      clearTimeout(timer);
      this.running.delete(generation.id);
      this.slots.release(slot);
      this.pump();
      if (this.running.size === 0) this.notifyIdle();
    }
  }

  private conclude(
    generation: Generation,
    result: Omit<EngineResult, 'completionTokens'>,
    error?: { code: ErrorCode; message: string },
  ): void {
    const now = performance.now();
    const started = generation.startedAt ?? now;
    if (generation.startedAt !== undefined) this.averageRunMs = this.averageRunMs * 0.8 + (now - started) * 0.2;
    generation.finish({
      finish: error === undefined ? finishOf(result, generation.stopCause) : 'error',
      usage: {
        promptTokens: result.promptTokens,
        completionTokens: generation.completionTokens + (result.unreportedTokens ?? 0),
        cachedPromptTokens: result.cachedPromptTokens,
      },
      timings: {
        queuedMs: round(started - generation.createdAt),
        // From arrival, as the metric and the benchmark measure it: the queue is part of the wait.
        ttftMs: generation.firstChunkAt === undefined ? null : round(generation.firstChunkAt - generation.createdAt),
        totalMs: round(now - generation.createdAt),
      },
      ...(error === undefined ? {} : { error }),
    });
    // An abandoned generation leaves this cache; its transcript stays in the store for a late resume.
    if (generation.stopCause !== 'abandoned' && generation.replayable) this.finished.set(generation.id, generation);
  }

  private concludeWithError(generation: Generation, error: unknown): void {
    const code: ErrorCode =
      error instanceof EngineError
        ? error.code
        : error instanceof ContextOverflowError
          ? 'context_overflow'
          : 'model_error';
    const message = error instanceof Error ? error.message : String(error);
    this.conclude(generation, { stop: 'stop', promptTokens: 0, cachedPromptTokens: 0 }, { code, message });
  }

  private queueFull(message: string, position: number): SchedulerRefusal {
    return new SchedulerRefusal('queue_full', message, this.estimateWaitMs(position));
  }

  /** Time until `position` waiting generations have had a sequence, from recent run times. */
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

function finishOf(result: Omit<EngineResult, 'completionTokens'>, cause: StopCause | undefined): FinishReason {
  if (result.stop === 'aborted') return cause === undefined || cause === 'abandoned' ? 'cancelled' : cause;
  return result.stop;
}

function round(ms: number): number {
  return Math.round(ms * 10) / 10;
}
