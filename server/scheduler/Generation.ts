import type { Channel, ErrorCode, FinishReason, TokenLogprob } from '../../protocol/index.js';
import type { ChatMessage, PromptFormat, SamplingParams, ToolCall, ToolCallChunk } from '../engine/Engine.js';

export type GenerationState = 'queued' | 'running' | 'done';

/**
 * Why a generation was stopped from outside. 'abandoned' (its client left and did not come back
 * within the grace period) finishes as 'cancelled' and is not kept for replay.
 */
export type StopCause = 'cancelled' | 'timeout' | 'abandoned';

/** `logprobs` only when the request asked for them: one per token of `text`. */
export type StreamChunk = { seq: number; text: string; channel: Channel; logprobs?: TokenLogprob[] };

/**
 * The chunks after `seq`, consecutive ones of a channel merged into one (its `seq` is the last
 * one's), for a client that resumes: a few frames however long the answer.
 */
export function runsAfter(chunks: readonly StreamChunk[], seq: number): StreamChunk[] {
  const runs: StreamChunk[] = [];
  let last: StreamChunk | undefined;
  for (const chunk of chunks) {
    if (chunk.seq <= seq) continue;
    if (last?.channel === chunk.channel) {
      last.text += chunk.text;
      last.seq = chunk.seq;
      if (last.logprobs !== undefined && chunk.logprobs !== undefined) last.logprobs.push(...chunk.logprobs);
    } else {
      last = { ...chunk, ...(chunk.logprobs === undefined ? {} : { logprobs: [...chunk.logprobs] }) };
      runs.push(last);
    }
  }
  return runs;
}

export type GenerationOutcome = {
  finish: FinishReason;
  usage: { promptTokens: number; completionTokens: number; cachedPromptTokens: number };
  timings: { queuedMs: number; ttftMs: number | null; totalMs: number };
  error?: { code: ErrorCode; message: string };
};

export type GenerationEvent =
  | { kind: 'queued'; position: number }
  | { kind: 'started' }
  | ({ kind: 'chunk'; tokens: number } & StreamChunk)
  | ({ kind: 'toolCall' } & ToolCallChunk)
  | { kind: 'done'; outcome: GenerationOutcome };

export type GenerationListener = (event: GenerationEvent) => void;

export type GenerationInput = {
  id: string;
  sessionId: string;
  /** Whose request this is, for fairness and limits (API key, else connection). */
  clientKey: string;
  /** Defaults to 'chat'. */
  format?: PromptFormat;
  /** Kept after it ends, for already_done acks and resume; HTTP requests cannot resume. Defaults to true. */
  replayable?: boolean;
  messages: readonly ChatMessage[];
  params: SamplingParams;
};

/**
 * One request's life: queued, running, done. It keeps every chunk it produced so that a client
 * that lost frames can replay them, and tells its listeners what happens.
 */
export class Generation {
  readonly id: string;
  readonly sessionId: string;
  readonly clientKey: string;
  readonly format: PromptFormat;
  readonly replayable: boolean;
  /** The prompt; let go of once the generation ends, since a finished one may be kept a while. */
  messages: readonly ChatMessage[];
  readonly params: SamplingParams;
  readonly abortController = new AbortController();
  readonly createdAt = performance.now();
  state: GenerationState = 'queued';
  stopCause: StopCause | undefined;
  startedAt: number | undefined;
  firstChunkAt: number | undefined;
  outcome: GenerationOutcome | undefined;
  private readonly chunks: StreamChunk[] = [];
  /** The tool calls so far, their arguments as written up to now (whole once it ends with 'tool_calls'). */
  readonly toolCalls: ToolCall[] = [];
  private tokenCount = 0;
  private position = -1;
  private readonly listeners = new Set<GenerationListener>();

  constructor(input: GenerationInput) {
    this.id = input.id;
    this.sessionId = input.sessionId;
    this.clientKey = input.clientKey;
    this.format = input.format ?? 'chat';
    this.replayable = input.replayable ?? true;
    this.messages = input.messages;
    this.params = input.params;
  }

  get announced(): boolean {
    return this.position !== -1;
  }

  get completionTokens(): number {
    return this.tokenCount;
  }

  /** Registers a listener; returns the function that removes it. */
  subscribe(listener: GenerationListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * The chunks after `seq`, consecutive ones of a channel merged into one (its `seq` is the last
   * one's), for a client that resumes: a few frames however long the answer.
   */
  runsAfter(seq: number): StreamChunk[] {
    return runsAfter(this.chunks, seq);
  }

  /** The text of one channel so far. */
  textOf(channel: Channel): string {
    let text = '';
    for (const chunk of this.chunks) if (chunk.channel === channel) text += chunk.text;
    return text;
  }

  /** The log probabilities of one channel's tokens so far; undefined when the request did not ask. */
  logprobsOf(channel: Channel): TokenLogprob[] | undefined {
    if (this.params.logprobs === undefined) return undefined;
    const logprobs: TokenLogprob[] = [];
    for (const chunk of this.chunks) if (chunk.channel === channel) logprobs.push(...(chunk.logprobs ?? []));
    return logprobs;
  }

  /** The answer so far, without reasoning. */
  contentText(): string {
    return this.textOf('content');
  }

  /** Announces the place in the queue when it changed; 0 means it starts at once. */
  markQueued(position: number): void {
    if (position === this.position) return;
    this.position = position;
    this.emit({ kind: 'queued', position });
  }

  markStarted(): void {
    this.state = 'running';
    this.startedAt = performance.now();
    this.emit({ kind: 'started' });
  }

  addChunk(text: string, channel: Channel, tokens: number, logprobs?: TokenLogprob[]): void {
    this.firstChunkAt ??= performance.now();
    this.tokenCount += tokens;
    const chunk: StreamChunk = { seq: this.tokenCount, text, channel };
    if (logprobs !== undefined) chunk.logprobs = logprobs;
    this.chunks.push(chunk);
    this.emit({ kind: 'chunk', tokens, ...chunk });
  }

  addToolCallChunk(chunk: ToolCallChunk): void {
    this.firstChunkAt ??= performance.now();
    this.tokenCount += chunk.tokens;
    const call = this.toolCalls[chunk.index] ?? { id: chunk.id, name: chunk.name, arguments: '' };
    this.toolCalls[chunk.index] = call;
    call.arguments += chunk.arguments;
    this.emit({ kind: 'toolCall', ...chunk });
  }

  finish(outcome: GenerationOutcome): void {
    if (this.state === 'done') return;
    this.state = 'done';
    this.outcome = outcome;
    this.messages = [];
    this.emit({ kind: 'done', outcome });
    this.listeners.clear();
  }

  private emit(event: GenerationEvent): void {
    for (const listener of this.listeners) listener(event);
  }
}
