import type { GenerationParams } from '../protocol/clientFrames.js';
import type {
  CancelAck,
  Channel,
  GenerationDone,
  GenerationQueued,
  ServerFrame,
  ToolCallFrame,
} from '../protocol/serverFrames.js';
import { ClientError } from './ClientError.js';

/** A piece of an answer as it streams: `seq` counts the tokens so far (a merged frame carries several). */
export type TokenChunk = { seq: number; text: string; channel: Channel };

/** What a generation needs of its connection. */
export interface GenerationLink {
  cancel(genId: string): Promise<CancelAck>;
  resume(genId: string, afterSeq: number): Promise<void>;
}

/**
 * One answer, as an async iterable of its token chunks, with `done` (the `generation.done`).
 * Chunks at or below the last `seq` held are dropped, so a resume never duplicates anything.
 */
export class ClientGeneration implements AsyncIterable<TokenChunk> {
  /** Known once the server queued it. */
  genId: string | undefined;
  /** 1-based place in the queue; 0 once it runs. */
  position: number | undefined;
  /** The last token count received: what a resume continues after. */
  lastSeq = 0;
  readonly done: Promise<GenerationDone>;
  /** Settles when the server queued it (or refused it). */
  readonly queued: Promise<GenerationQueued>;
  /** Told of every queue position (it can grow when a quieter client goes first). */
  onQueued: ((position: number) => void) | undefined;
  /** The tools the model called, once it ended with finish 'tool_calls' (the `tool.call` frames). */
  readonly toolCalls: ToolCallFrame[] = [];
  /** Told when it gets a sequence and starts. */
  onStarted: (() => void) | undefined;
  private outcome: GenerationDone | undefined;
  private failure: ClientError | undefined;
  private readonly chunks: TokenChunk[] = [];
  private wake: (() => void) | undefined;
  private settle!: { done: (frame: GenerationDone) => void; fail: (error: ClientError) => void };
  private settleQueued!: { ok: (frame: GenerationQueued) => void; fail: (error: ClientError) => void };

  constructor(
    readonly sessionId: string,
    readonly params: GenerationParams | undefined,
    /** The connection it streams on; a reconnecting client moves it to the next one. */
    public link: GenerationLink,
  ) {
    this.done = new Promise((resolve, reject) => {
      this.settle = { done: resolve, fail: reject };
    });
    this.queued = new Promise((resolve, reject) => {
      this.settleQueued = { ok: resolve, fail: reject };
    });
    // Nobody may be waiting on these: a failure is reported through whichever is read.
    this.done.catch(() => undefined);
    this.queued.catch(() => undefined);
  }

  get finished(): boolean {
    return this.outcome !== undefined || this.failure !== undefined;
  }

  /** Stops it; resolves with the `cancel.ack` (status cancelled, already_done or not_found). */
  cancel(): Promise<CancelAck> {
    if (this.genId === undefined) return Promise.reject(new ClientError('not_found', 'Not queued yet'));
    return this.link.cancel(this.genId);
  }

  /** Asks for everything after the last `seq` held (after a reconnect and reattach). */
  resume(): Promise<void> {
    if (this.genId === undefined) return Promise.reject(new ClientError('not_found', 'Not queued yet'));
    return this.link.resume(this.genId, this.lastSeq);
  }

  /** The whole answer's text on one channel, once done. */
  async text(channel: Channel = 'content'): Promise<string> {
    let text = '';
    for await (const chunk of this) if (chunk.channel === channel) text += chunk.text;
    return text;
  }

  async *[Symbol.asyncIterator](): AsyncIterator<TokenChunk> {
    let next = 0;
    for (;;) {
      while (next < this.chunks.length) yield this.chunks[next++] as TokenChunk;
      if (this.failure !== undefined) throw this.failure;
      if (this.outcome !== undefined) return;
      await new Promise<void>((resolve) => {
        this.wake = resolve;
      });
    }
  }

  /** A frame for this generation (routed by its connection). */
  receive(frame: ServerFrame): void {
    switch (frame.type) {
      case 'generation.queued':
        this.genId = frame.genId;
        this.position = frame.position;
        this.settleQueued.ok(frame);
        this.onQueued?.(frame.position);
        return;
      case 'generation.started':
        this.position = 0;
        this.onStarted?.();
        return;
      case 'token':
        if (frame.seq <= this.lastSeq) return;
        this.lastSeq = frame.seq;
        this.chunks.push({ seq: frame.seq, text: frame.text, channel: frame.channel });
        break;
      case 'tool.call':
        this.toolCalls.push(frame);
        return;
      case 'generation.done':
        this.outcome ??= frame;
        this.settle.done(frame);
        break;
      default:
        return;
    }
    this.wakeReader();
  }

  /** The request was refused, or the connection is gone for good. */
  fail(error: ClientError): void {
    if (this.finished) return;
    this.failure = error;
    this.settleQueued.fail(error);
    this.settle.fail(error);
    this.wakeReader();
  }

  private wakeReader(): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }
}
