import type { Channel } from '../../../protocol/index.js';

/** What one event of an OpenAI-compatible stream says, in the engine's terms. */
export type StreamEvent =
  | { kind: 'done' }
  | { kind: 'error'; message: string; code: string | undefined }
  | {
      kind: 'chunk';
      /** Text pieces in order; each counts as one token. */
      pieces: Array<{ text: string; channel: Channel }>;
      /** Pieces of tool calls, in OpenAI's shape: id and name on a call's first, then arguments. */
      toolCalls: UpstreamToolCallPiece[];
      finish: 'stop' | 'length' | 'tool_calls' | undefined;
      usage: { promptTokens: number; cachedPromptTokens: number | undefined } | undefined;
    };

export type UpstreamToolCallPiece = { index: number; id?: string; name?: string; arguments: string };

type Json = Record<string, unknown>;

/**
 * Reads the `data` of one event of `/v1/chat/completions` or `/v1/completions` with `stream: true`:
 * `content` (or a completion's `text`) is the answer, `reasoning_content` (vLLM, llama-server) or
 * `reasoning` (newer vLLM, OpenRouter) its reasoning; the usage chunk's `prompt_tokens_details.
 * cached_tokens`, or llama-server's `timings.cache_n`, the prompt tokens its cache held.
 * Throws when the data is not JSON.
 */
export function readStreamEvent(data: string): StreamEvent {
  if (data === '[DONE]') return { kind: 'done' };
  const event = JSON.parse(data) as unknown;
  if (!isObject(event)) throw new SyntaxError('an event that is not a JSON object');
  if (isObject(event.error)) {
    const { message, code, type } = event.error;
    const named = typeof code === 'string' ? code : typeof type === 'string' ? type : undefined;
    return {
      kind: 'error',
      message: typeof message === 'string' ? message : 'an error without a message',
      code: named,
    };
  }
  const choice = Array.isArray(event.choices) && isObject(event.choices[0]) ? event.choices[0] : undefined;
  return {
    kind: 'chunk',
    pieces: choice === undefined ? [] : piecesOf(choice),
    toolCalls: choice === undefined ? [] : toolCallsOf(choice),
    finish: finishOf(choice?.finish_reason),
    usage: usageOf(event),
  };
}

function piecesOf(choice: Json): Array<{ text: string; channel: Channel }> {
  const pieces: Array<{ text: string; channel: Channel }> = [];
  const add = (text: unknown, channel: Channel) => {
    if (typeof text === 'string' && text !== '') pieces.push({ text, channel });
  };
  const delta = isObject(choice.delta) ? choice.delta : undefined;
  if (delta !== undefined) {
    add(delta.reasoning_content ?? delta.reasoning, 'reasoning');
    add(delta.content, 'content');
  } else add(choice.text, 'content');
  return pieces;
}

function toolCallsOf(choice: Json): UpstreamToolCallPiece[] {
  const delta = isObject(choice.delta) ? choice.delta : undefined;
  if (delta === undefined || !Array.isArray(delta.tool_calls)) return [];
  return delta.tool_calls.filter(isObject).map((call, position) => {
    const fn = isObject(call.function) ? call.function : {};
    return {
      index: typeof call.index === 'number' ? call.index : position,
      ...(typeof call.id === 'string' ? { id: call.id } : {}),
      ...(typeof fn.name === 'string' ? { name: fn.name } : {}),
      arguments: typeof fn.arguments === 'string' ? fn.arguments : '',
    };
  });
}

function finishOf(reason: unknown): 'stop' | 'length' | 'tool_calls' | undefined {
  if (typeof reason !== 'string') return undefined;
  if (reason === 'tool_calls') return 'tool_calls';
  return reason === 'length' ? 'length' : 'stop';
}

function usageOf(event: Json): Extract<StreamEvent, { kind: 'chunk' }>['usage'] {
  if (!isObject(event.usage) || typeof event.usage.prompt_tokens !== 'number') return undefined;
  const details = isObject(event.usage.prompt_tokens_details) ? event.usage.prompt_tokens_details : {};
  const timings = isObject(event.timings) ? event.timings : {};
  const cached = details.cached_tokens ?? timings.cache_n;
  return {
    promptTokens: event.usage.prompt_tokens,
    cachedPromptTokens: typeof cached === 'number' ? cached : undefined,
  };
}

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
