import type { FinishReason } from '../../../protocol/index.js';
import type { GenerationOutcome } from '../../scheduler/Generation.js';

export type ApiKind = 'chat' | 'text';

/** The parts every response and chunk of one request share. */
export type ResponseHead = { id: string; created: number; model: string; kind: ApiKind };

/** OpenAI's finish reasons: a timeout is a length limit; a cancel (shutdown) ends like a stop. */
export function finishReasonOf(finish: FinishReason): 'stop' | 'length' {
  return finish === 'length' || finish === 'timeout' ? 'length' : 'stop';
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
  finish: 'stop' | 'length' | null,
) {
  const { id, created, model } = head;
  if (head.kind === 'text') {
    return {
      id,
      object: 'text_completion',
      created,
      model,
      choices: [{ index: 0, text, finish_reason: finish, logprobs: null }],
    };
  }
  const delta = text === '' ? {} : channel === 'reasoning' ? { reasoning_content: text } : { content: text };
  return {
    id,
    object: 'chat.completion.chunk',
    created,
    model,
    choices: [{ index: 0, delta, finish_reason: finish, logprobs: null }],
  };
}

export function usageChunkOf(head: ResponseHead, outcome: GenerationOutcome) {
  const object = head.kind === 'text' ? 'text_completion' : 'chat.completion.chunk';
  return { id: head.id, object, created: head.created, model: head.model, choices: [], usage: usageOf(outcome) };
}

/** The whole answer, for a request without `stream`. */
export function completionOf(head: ResponseHead, content: string, reasoning: string, outcome: GenerationOutcome) {
  const { id, created, model } = head;
  const finish_reason = finishReasonOf(outcome.finish);
  const usage = usageOf(outcome);
  if (head.kind === 'text') {
    return {
      id,
      object: 'text_completion',
      created,
      model,
      choices: [{ index: 0, text: content, finish_reason, logprobs: null }],
      usage,
    };
  }
  const message = { role: 'assistant', content, ...(reasoning === '' ? {} : { reasoning_content: reasoning }) };
  return {
    id,
    object: 'chat.completion',
    created,
    model,
    choices: [{ index: 0, message, finish_reason, logprobs: null }],
    usage,
  };
}
