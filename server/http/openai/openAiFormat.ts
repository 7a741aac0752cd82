import type { FinishReason } from '../../../protocol/index.js';
import type { ToolCall, ToolCallChunk } from '../../engine/Engine.js';
import type { GenerationOutcome } from '../../scheduler/Generation.js';

export type ApiKind = 'chat' | 'text';

/** The parts every response and chunk of one request share. */
export type ResponseHead = { id: string; created: number; model: string; kind: ApiKind };

/** OpenAI's finish reasons: a timeout is a length limit; a cancel (shutdown) ends like a stop. */
export function finishReasonOf(finish: FinishReason): 'stop' | 'length' | 'tool_calls' {
  if (finish === 'tool_calls') return 'tool_calls';
  return finish === 'length' || finish === 'timeout' ? 'length' : 'stop';
}

/**
 * A streamed piece of a tool call, in OpenAI's shape: the call's first piece carries its id, type
 * and name (with the arguments so far), later ones only more of its arguments.
 */
export function toolCallChunkOf(head: ResponseHead, chunk: ToolCallChunk, first: boolean) {
  const call = first
    ? { index: chunk.index, id: chunk.id, type: 'function', function: { name: chunk.name, arguments: chunk.arguments } }
    : { index: chunk.index, function: { arguments: chunk.arguments } };
  const { id, created, model } = head;
  return {
    id,
    object: 'chat.completion.chunk',
    created,
    model,
    choices: [{ index: 0, delta: { tool_calls: [call] }, finish_reason: null, logprobs: null }],
  };
}

/** The calls of a whole answer, in OpenAI's shape. */
export function toolCallsOf(calls: readonly ToolCall[]) {
  return calls.map((call) => ({
    id: call.id,
    type: 'function',
    function: { name: call.name, arguments: call.arguments },
  }));
}

export function usageOf(outcome: GenerationOutcome) {
  const { promptTokens, completionTokens, cachedPromptTokens } = outcome.usage;
  return {
    prompt_tokens: promptTokens,
    completion_tokens: completionTokens,
    total_tokens: promptTokens + completionTokens,
    prompt_tokens_details: { cached_tokens: cachedPromptTokens },
  };
}

/** One streamed piece: `delta` for chat (reasoning as `reasoning_content`, as vLLM does), `text` for completions. */
export function chunkOf(
  head: ResponseHead,
  text: string,
  channel: 'content' | 'reasoning',
  finish: 'stop' | 'length' | 'tool_calls' | null,
  /** The chunk's tokens' logprobs, in the shape of `head.kind` (logprobsFormat.ts). */
  logprobs: object | null = null,
) {
  const { id, created, model } = head;
  if (head.kind === 'text') {
    return {
      id,
      object: 'text_completion',
      created,
      model,
      choices: [{ index: 0, text, finish_reason: finish, logprobs }],
    };
  }
  const delta = text === '' ? {} : channel === 'reasoning' ? { reasoning_content: text } : { content: text };
  return {
    id,
    object: 'chat.completion.chunk',
    created,
    model,
    choices: [{ index: 0, delta, finish_reason: finish, logprobs }],
  };
}

export function usageChunkOf(head: ResponseHead, outcome: GenerationOutcome) {
  const object = head.kind === 'text' ? 'text_completion' : 'chat.completion.chunk';
  return { id: head.id, object, created: head.created, model: head.model, choices: [], usage: usageOf(outcome) };
}

/** The whole answer, for a request without `stream`. */
export function completionOf(
  head: ResponseHead,
  content: string,
  reasoning: string,
  outcome: GenerationOutcome,
  toolCalls: readonly ToolCall[] = [],
  /** The answer's tokens' logprobs, in the shape of `head.kind` (logprobsFormat.ts). */
  logprobs: object | null = null,
) {
  const { id, created, model } = head;
  const finish_reason = finishReasonOf(outcome.finish);
  const usage = usageOf(outcome);
  if (head.kind === 'text') {
    return {
      id,
      object: 'text_completion',
      created,
      model,
      choices: [{ index: 0, text: content, finish_reason, logprobs }],
      usage,
    };
  }
  // As OpenAI answers a call: content null when the model wrote nothing beside it.
  const message = {
    role: 'assistant',
    content: toolCalls.length > 0 && content === '' ? null : content,
    ...(reasoning === '' ? {} : { reasoning_content: reasoning }),
    ...(toolCalls.length === 0 ? {} : { tool_calls: toolCallsOf(toolCalls) }),
  };
  return {
    id,
    object: 'chat.completion',
    created,
    model,
    choices: [{ index: 0, message, finish_reason, logprobs }],
    usage,
  };
}
