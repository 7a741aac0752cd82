import type { Channel, LogprobsParams, Refusal, TokenAlternative, TokenLogprob } from '../../../protocol/index.js';
import type { ApiKind } from './openAiFormat.js';

/** The logprob fields of a chat completion or completion request, once its schema has passed. */
export type LogprobsFields = { logprobs?: boolean | number | null; top_logprobs?: number | null };

/**
 * What the request asks for, as the engine's `logprobs`: chat's `logprobs: true` with
 * `top_logprobs` (0–20, only with it), or the legacy completions' `logprobs` (0–5).
 */
export function logprobsParamsOf(kind: ApiKind, body: LogprobsFields): { logprobs?: LogprobsParams } | Refusal {
  const { logprobs, top_logprobs } = body;
  if (kind === 'text') {
    if (top_logprobs != null && top_logprobs !== 0) {
      const message = 'top_logprobs: completions take logprobs (0–5), the number of alternatives per token';
      return { code: 'unsupported_parameter', message, param: 'top_logprobs' };
    }
    return typeof logprobs === 'number' ? { logprobs: { top: logprobs } } : {};
  }
  if (logprobs !== true) {
    // 0 asks for nothing, as the value some clients send by default.
    if (top_logprobs == null || top_logprobs === 0) return {};
    return { code: 'bad_frame', message: 'top_logprobs: needs logprobs: true', param: 'top_logprobs' };
  }
  return { logprobs: { top: top_logprobs ?? 0 } };
}

/** A shaper for a request that asked for logprobs; none for one that did not. */
export function logprobsShaperFor(kind: ApiKind, asked: LogprobsParams | undefined): LogprobsShaper | undefined {
  return asked === undefined ? undefined : new LogprobsShaper(kind, asked.top);
}

/**
 * Turns the engine's logprobs into OpenAI's shapes, chunk after chunk: chat's `{content: [...]}`
 * (the answer's tokens; reasoning has none), or the legacy completions' `{tokens, token_logprobs,
 * top_logprobs, text_offset}`, whose offsets count characters of the answer from its start.
 */
export class LogprobsShaper {
  private offset = 0;

  constructor(
    private readonly kind: ApiKind,
    private readonly top: number,
  ) {}

  /** The `logprobs` of a choice for a chunk: null for reasoning, whose tokens OpenAI's shapes have no place for. */
  of(channel: Channel, entries: readonly TokenLogprob[] | undefined) {
    return channel === 'content' && entries !== undefined ? this.shape(entries) : null;
  }

  /** The `logprobs` of a choice for these tokens. */
  shape(entries: readonly TokenLogprob[]) {
    return this.kind === 'chat' ? { content: entries.map(chatEntryOf), refusal: null } : this.legacyOf(entries);
  }

  private legacyOf(entries: readonly TokenLogprob[]) {
    const text_offset: number[] = [];
    for (const entry of entries) {
      text_offset.push(this.offset);
      // In characters (code points), as Python servers count them.
      this.offset += [...entry.token].length;
    }
    return {
      tokens: entries.map((entry) => entry.token),
      token_logprobs: entries.map((entry) => entry.logprob),
      top_logprobs: entries.map((entry) => this.legacyTopOf(entry)),
      text_offset,
    };
  }

  /** The `top` likeliest by their text, and the sampled token whatever its rank (so up to top + 1). */
  private legacyTopOf(entry: TokenLogprob): Record<string, number> {
    const top: Record<string, number> = {};
    for (const alternative of entry.top.slice(0, this.top)) top[alternative.token] ??= alternative.logprob;
    top[entry.token] ??= entry.logprob;
    return top;
  }
}

function chatEntryOf(entry: TokenLogprob) {
  return { ...alternativeOf(entry), top_logprobs: entry.top.map(alternativeOf) };
}

function alternativeOf({ token, logprob, bytes }: TokenAlternative) {
  return { token, logprob, bytes };
}
