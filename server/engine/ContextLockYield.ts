import type { LlamaContext, LlamaContextSequence } from 'node-llama-cpp';

type DecodeRequest = { sequenceId: number };
type DecodeTokens = (request: DecodeRequest, ...rest: unknown[]) => Promise<unknown>;

/**
 * Works around node-llama-cpp 3.21's batch loop, which holds the context lock for as long as
 * any sequence keeps decoding. Erasing a sequence's KV cache (to reuse it for another
 * conversation) needs that lock, so with two or more generations running, a new generation on
 * a used sequence waited until every running one had finished (measured: 170–340 ms at 8
 * streams of 128 tokens; unbounded under steady load). While an erase waits, the other
 * sequences hold their next decode back: the loop finishes its batch, finds its queue empty and
 * releases the lock; the erase runs (well under a millisecond) and decoding resumes.
 */
export class ContextLockYield {
  private readonly erasing = new Set<number>();
  private resumed: Promise<void> = Promise.resolve();
  private resume: () => void = () => {};
  readonly active: boolean;

  constructor(context: LlamaContext) {
    // Reaches two internals (this method, a sequence's id), present in the pinned 3.21.1;
    // without them the workaround is off.
    const internals = context as unknown as { _decodeTokens?: DecodeTokens };
    const decodeTokens = internals._decodeTokens?.bind(context);
    this.active = decodeTokens !== undefined;
    if (decodeTokens === undefined) return;
    internals._decodeTokens = async (request, ...rest) => {
      while (this.erasing.size > 0 && !this.erasing.has(request.sequenceId)) await this.resumed;
      return decodeTokens(request, ...rest);
    };
  }

  /**
   * Runs a task on `sequence` that needs the context lock, holding the other sequences back
   * meanwhile (the sequence's own decodes pass: an erase may re-evaluate part of it).
   */
  async run<T>(sequence: LlamaContextSequence, task: () => Promise<T>): Promise<T> {
    const sequenceId = (sequence as unknown as { _sequenceId?: number })._sequenceId;
    if (!this.active || sequenceId === undefined) return task();
    if (this.erasing.size === 0) this.resumed = new Promise((resolve) => (this.resume = resolve));
    this.erasing.add(sequenceId);
    try {
      return await task();
    } finally {
      this.erasing.delete(sequenceId);
      if (this.erasing.size === 0) this.resume();
    }
  }
}
