import {
  type CloseCode,
  CloseCodes,
  type ErrorCode,
  encodeServerFrame,
  RETRYABLE,
  type Refusal,
  type ServerFrame,
  type Token,
} from '../../protocol/index.js';
import type { Identity } from '../auth/Identity.js';
import type { ToolCall } from '../engine/Engine.js';
import type { Generation, GenerationEvent, GenerationOutcome, StreamChunk } from '../scheduler/Generation.js';
import type { SocketHandle } from '../transport/Transport.js';
import type { Followers } from './Followers.js';
import { TokenOutbox } from './TokenOutbox.js';

export type ErrorDetails = { id?: string; genId?: string; retryAfterMs?: number };

export type OutputLimits = {
  /** Above this many bytes waiting, token frames are coalesced. */
  coalesceAboveBytes: number;
  /** Above this many bytes waiting (sent and held), the client is closed as too slow. */
  maxBufferedBytes: number;
  /** Told of every error frame sent (metrics). */
  onError?: (code: ErrorCode) => void;
  /** Frames to send right after a generation's `generation.done` (the client's rate limits). */
  afterDone?: (connection: Connection) => Promise<ServerFrame | undefined>;
  /** Told when this connection starts and stops following a generation (resume grace). */
  followers?: Followers;
};

/** One client connection: its socket, the sessions it opened and the generations it follows. */
export class Connection {
  /** Sessions this connection opened or reattached; only these may be used on it. */
  readonly sessions = new Set<string>();
  private readonly following = new Map<string, () => void>();
  private readonly pendingAcks = new Map<string, string[]>();
  private readonly outbox = new TokenOutbox();
  private badFrameTimes: number[] = [];
  /** The socket said its last write had to wait (backpressure). */
  private backpressured = false;
  /** Set when it was closed for reading too slowly: its generations are cancelled, not kept. */
  tooSlow = false;
  /** Set once the socket has closed: nothing more is sent or followed. */
  detached = false;
  private work: Promise<void> = Promise.resolve();

  constructor(
    readonly id: string,
    readonly socket: SocketHandle<Identity>,
    readonly identity: Identity,
    private readonly limits: OutputLimits,
  ) {}

  /** Runs tasks one after another in the order given (frames are handled in the order sent). */
  serially(task: () => Promise<void>): void {
    this.work = this.work.then(task);
  }

  send(frame: ServerFrame): void {
    if (frame.type === 'token' && (!this.outbox.isEmpty || this.readsSlowly())) {
      this.outbox.add(frame);
      this.enforceBufferLimit(this.socket.bufferedBytes());
      return;
    }
    // Held tokens go first, so that no frame overtakes the tokens before it.
    if (!this.outbox.isEmpty) this.flush();
    this.write(encodeServerFrame(frame));
  }

  /** Sends the held token frames (when the socket drains, or before any other frame). */
  flush(): void {
    this.backpressured = false;
    for (const token of this.outbox.take()) this.write(encodeServerFrame(token));
  }

  /** Writes one frame and acts on what the socket says: buffered means backpressure, dropped means too slow. */
  private write(text: string): void {
    const status = this.socket.send(text);
    if (status === 'dropped') {
      this.closeTooSlow();
      return;
    }
    this.backpressured = status === 'buffered';
    if (this.backpressured) this.enforceBufferLimit(this.socket.bufferedBytes());
  }

  /** Only asked of the socket while it reported backpressure on the last write. */
  private readsSlowly(): boolean {
    return this.backpressured && this.socket.bufferedBytes() > this.limits.coalesceAboveBytes;
  }

  sendError(code: ErrorCode, message: string, details: ErrorDetails = {}): void {
    this.limits.onError?.(code);
    this.send({ type: 'error', ...details, code, message, retryable: RETRYABLE[code] });
  }

  /** An error frame for a refused request (a limit, a bound), with its retry hint when it has one. */
  refuse(refusal: Refusal, id: string): void {
    const { code, message, retryAfterMs } = refusal;
    this.sendError(code, message, retryAfterMs === undefined ? { id } : { id, retryAfterMs });
  }

  close({ code, reason }: CloseCode): void {
    this.socket.close(code, reason);
  }

  private enforceBufferLimit(buffered: number): void {
    if (buffered + this.outbox.bytes > this.limits.maxBufferedBytes) this.closeTooSlow();
  }

  private closeTooSlow(): void {
    if (this.tooSlow) return;
    this.tooSlow = true;
    this.outbox.take();
    this.close(CloseCodes.SlowConsumer);
  }

  /** Counts a bad frame; true when the client has sent too many within the window. */
  recordBadFrame(now: number, limit: number, windowMs: number): boolean {
    this.badFrameTimes = this.badFrameTimes.filter((time) => now - time < windowMs);
    this.badFrameTimes.push(now);
    return this.badFrameTimes.length > limit;
  }

  /** Sends what came after `afterSeq` again, merged per run of a channel, instead of any held back for it. */
  replay(generation: Generation, afterSeq: number): void {
    this.replayRuns(generation.id, generation.runsAfter(afterSeq));
  }

  /** Sends runs of a generation that is not in this process (read from the store). */
  replayRuns(genId: string, runs: readonly StreamChunk[]): void {
    this.outbox.drop(genId);
    for (const run of runs) this.send({ type: 'token', genId, ...run });
  }

  /** The calls of an answer that ended with 'tool_calls', one `tool.call` frame each, before its generation.done. */
  sendToolCalls(genId: string, calls: readonly ToolCall[]): void {
    for (const call of calls)
      this.send({ type: 'tool.call', genId, callId: call.id, name: call.name, arguments: call.arguments });
  }

  /** Streams a generation's events to this client as frames, replacing an earlier stream of it. */
  follow(generation: Generation, requestId: string): void {
    if (this.detached) {
      // The socket closed while the request waited on the store: the generation gets the resume grace.
      this.limits.followers?.follow(generation.id);
      this.limits.followers?.unfollow(generation.id, false);
      return;
    }
    const earlier = this.following.get(generation.id);
    if (earlier === undefined) this.limits.followers?.follow(generation.id);
    else earlier();
    const unsubscribe = generation.subscribe((event) => this.forward(generation, requestId, event));
    this.following.set(generation.id, unsubscribe);
  }

  /** Sends `cancel.ack` once the generation has stopped, just before its `generation.done`. */
  ackWhenDone(generation: Generation, requestId: string): void {
    const acks = this.pendingAcks.get(generation.id) ?? [];
    acks.push(requestId);
    this.pendingAcks.set(generation.id, acks);
    if (!this.following.has(generation.id)) {
      generation.subscribe((event) => {
        if (event.kind === 'done') this.flushAcks(generation.id, event.outcome);
      });
    }
  }

  /**
   * Stops every stream when the socket closes; returns the generations it was following, which go
   * on for the resume grace period unless nobody else follows them.
   */
  detach(): string[] {
    this.detached = true;
    const followed = [...this.following.keys()];
    for (const [genId, unsubscribe] of this.following) {
      unsubscribe();
      this.limits.followers?.unfollow(genId, false);
    }
    this.following.clear();
    this.pendingAcks.clear();
    return followed;
  }

  private forward(generation: Generation, requestId: string, event: GenerationEvent): void {
    const genId = generation.id;
    switch (event.kind) {
      case 'queued':
        this.send({
          type: 'generation.queued',
          id: requestId,
          genId,
          sessionId: generation.sessionId,
          position: event.position,
        });
        return;
      case 'started':
        this.send({ type: 'generation.started', genId });
        return;
      case 'chunk': {
        const { seq, text, channel, logprobs } = event;
        // Per token: no object spread for the field most frames do not have.
        const frame: Token = { type: 'token', genId, seq, text, channel };
        if (logprobs !== undefined) frame.logprobs = logprobs;
        this.send(frame);
        return;
      }
      case 'toolCall':
        // A call goes out whole, in a tool.call frame, once the answer has ended.
        return;
      case 'done':
        this.following.delete(genId);
        this.limits.followers?.unfollow(genId, true);
        this.flushAcks(genId, event.outcome);
        if (event.outcome.finish === 'tool_calls') this.sendToolCalls(genId, generation.toolCalls);
        this.send({ type: 'generation.done', genId, ...event.outcome });
        this.sendAfterDone();
        return;
      default:
        event satisfies never;
    }
  }

  private sendAfterDone(): void {
    this.limits
      .afterDone?.(this)
      .then((frame) => {
        if (frame !== undefined && !this.detached) this.send(frame);
      })
      // The rate limits are a courtesy: a store that cannot say them now leaves them out.
      .catch(() => {});
  }

  /**
   * The acks of cancels that were waiting for the end: `cancelled` when the cancel stopped it,
   * `already_done` when it ended on its own first (the engine runs a token ahead of delivery).
   */
  private flushAcks(genId: string, outcome: GenerationOutcome): void {
    const status = outcome.finish === 'cancelled' ? 'cancelled' : 'already_done';
    const completionTokens = outcome.usage.completionTokens;
    for (const id of this.pendingAcks.get(genId) ?? []) {
      this.send({ type: 'cancel.ack', id, genId, status, completionTokens });
    }
    this.pendingAcks.delete(genId);
  }
}
