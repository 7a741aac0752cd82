import type { LlamaContext, LlamaContextSequence } from 'node-llama-cpp';

type DecodeRequest = { sequenceId: number };
type DecodeTokens = (request: DecodeRequest, ...rest: unknown[]) => Promise<unknown>;
type Held = { request: DecodeRequest; rest: unknown[]; resolve: (decoded: Promise<unknown>) => void };

/** How long the next tokens wait, once no decode runs, for a generating sequence that has not queued its own. */
const STRAGGLER_WAIT_MS = 2;

/**
 * Makes each decode carry every generating sequence's next token, in one llama.cpp ubatch.
 *
 * node-llama-cpp 3.21's batch loop decodes whatever is queued the moment the previous decode's
 * sampling is done. Each sequence queues its next token only after its own sampling and
 * LlamaChat's per-token work, so the last one sampled always missed the batch (measured on the
 * 85 M model at N = 8: 72 decodes of 7 tokens for 512 tokens, never 8). And llama.cpp, whose KV
 * cache has one stream per sequence, splits a batch into one ubatch per run of consecutive
 * sequence ids in batch order, each a full pass over the weights: tokens queued in sampling order
 * (3, 0, 5, …) cost nearly as much as decoding them one by one. This gate holds each sequence's
 * decode until every sequence of the previous batch has queued its next one (or has left the
 * gate, or STRAGGLER_WAIT_MS passed with no decode running), then hands them all to the library
 * at once, ordered by sequence id.
 */
export class DecodeBatchGate {
  private held: Held[] = [];
  /** The sequences of the last batch handed on, still generating: the next batch waits for them. */
  private readonly expected = new Set<number>();
  private inFlight = 0;
  private timer: NodeJS.Timeout | undefined;
  private immediate: NodeJS.Immediate | undefined;
  private readonly decodeTokens: DecodeTokens | undefined;
  readonly active: boolean;

  constructor(context: LlamaContext) {
    // Reaches two internals (this method, a sequence's id), present in the pinned 3.21.1;
    // without them the gate is off and the library batches as it does.
    const internals = context as unknown as { _decodeTokens?: DecodeTokens };
    this.decodeTokens = internals._decodeTokens?.bind(context);
    this.active = this.decodeTokens !== undefined;
    if (!this.active) return;
    internals._decodeTokens = (request, ...rest) => this.arrive(request, rest);
  }

  /** A generation on `sequence` ended: the next batch does not wait for it. */
  leave(sequence: LlamaContextSequence): void {
    const sequenceId = (sequence as unknown as { _sequenceId?: number })._sequenceId;
    if (sequenceId === undefined || !this.expected.delete(sequenceId)) return;
    this.releaseWhenReady();
  }

  private arrive(request: DecodeRequest, rest: unknown[]): Promise<unknown> {
    // The common case, the last one awaited (always so with one stream), goes straight on.
    if (this.held.length === 0 && this.expected.size === 1 && this.expected.has(request.sequenceId)) {
      this.expected.clear();
      return this.pass(request, rest);
    }
    return new Promise((resolve) => {
      this.held.push({ request, rest, resolve });
      this.releaseWhenReady();
    });
  }

  private releaseWhenReady(): void {
    if (this.held.length === 0) return;
    const arrived = new Set(this.held.map((held) => held.request.sequenceId));
    let missing = 0;
    for (const sequenceId of this.expected) if (!arrived.has(sequenceId)) missing++;
    // With nothing to wait for, those that arrive in the same turn (streams started together) go together.
    if (this.expected.size === 0) this.immediate ??= setImmediate(() => this.release());
    else if (missing === 0) this.release();
    // While a decode runs, what is released would only wait behind it and split the next batch;
    // the wait for a straggler starts once none runs.
    else if (this.inFlight === 0) this.timer ??= setTimeout(() => this.release(), STRAGGLER_WAIT_MS);
  }

  private release(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    clearImmediate(this.immediate);
    this.immediate = undefined;
    const batch = this.held.sort((a, b) => a.request.sequenceId - b.request.sequenceId);
    this.held = [];
    this.expected.clear();
    for (const { request, rest, resolve } of batch) resolve(this.pass(request, rest));
  }

  /** Hands one decode to the library; the next batch waits for this sequence. */
  private pass(request: DecodeRequest, rest: unknown[]): Promise<unknown> {
    this.expected.add(request.sequenceId);
    this.inFlight++;
    const decoded = (this.decodeTokens as DecodeTokens)(request, ...rest);
    const settled = () => {
      this.inFlight--;
      if (this.inFlight === 0) this.releaseWhenReady();
    };
    decoded.then(settled, settled);
    return decoded;
  }
}
