import { z } from 'zod';
import type { ReasoningLevel } from '../../../protocol/index.js';
import { TOOL_LIMITS } from '../../../protocol/index.js';

/** OpenAI's `response_format`; a json_schema without `schema` asks for any JSON object. */
const OpenAiResponseFormat = z.discriminatedUnion('type', [
  z.object({ type: z.literal('text') }),
  z.object({ type: z.literal('json_object') }),
  z.object({
    type: z.literal('json_schema'),
    json_schema: z.object({
      name: z.string().min(1).max(64).optional(),
      description: z.string().optional(),
      schema: z.record(z.string(), z.unknown()).optional(),
      strict: z.boolean().nullish(),
    }),
  }),
]);

/**
 * The fields of OpenAI's requests that apply to a local model. Those that ask for what the server
 * does not do are refused first (refuseUnsupported); other unknown fields only describe the
 * caller (`user`, `metadata`, …) and are ignored.
 */
const sampling = {
  model: z.string().optional(),
  max_tokens: z.number().int().min(1).nullish(),
  max_completion_tokens: z.number().int().min(1).nullish(),
  temperature: z.number().min(0).max(2).nullish(),
  top_p: z.number().gt(0).max(1).nullish(),
  top_k: z.number().int().min(0).max(1000).nullish(),
  min_p: z.number().min(0).max(1).nullish(),
  seed: z.number().int().min(0).max(4_294_967_295).nullish(),
  stop: z.union([z.string().min(1), z.array(z.string().min(1)).max(8)]).nullish(),
  stream: z.boolean().nullish(),
  stream_options: z.object({ include_usage: z.boolean().optional() }).nullish(),
  n: z.literal(1).nullish(),
  /** Requests with the same key are kept on the same sequence, whose KV cache holds their common start. */
  prompt_cache_key: z.string().min(1).max(64).nullish(),
  response_format: OpenAiResponseFormat.nullish(),
};

/**
 * OpenAI's efforts. gpt-oss takes low, medium and high: `none` and `minimal` ask for the least
 * reasoning, so they run as `low` (see reasoningLevelOf).
 */
export const OpenAiReasoningEffort = z.enum(['none', 'minimal', 'low', 'medium', 'high']);

/** The level the model's chat format takes for an OpenAI effort. */
export function reasoningLevelOf(effort: z.infer<typeof OpenAiReasoningEffort>): ReasoningLevel {
  return effort === 'none' || effort === 'minimal' ? 'low' : effort;
}

const TextPart = z.object({ type: z.literal('text'), text: z.string() });

const MAX_MESSAGES = 1000;
const MAX_CONTENT_PARTS = 256;

/**
 * Bounds checked before the schema, in one cheap pass: the schema's work grows with the number
 * of items, so a body of many tiny ones must be refused before it is validated.
 */
export function countItems(value: unknown): string | undefined {
  const messages = (value as { messages?: unknown } | null)?.messages;
  if (!Array.isArray(messages)) return undefined;
  if (messages.length > MAX_MESSAGES) return `messages: at most ${MAX_MESSAGES} messages`;
  const tools = (value as { tools?: unknown }).tools;
  if (Array.isArray(tools) && tools.length > TOOL_LIMITS.maxTools)
    return `tools: at most ${TOOL_LIMITS.maxTools} tools`;
  let parts = 0;
  for (const message of messages) {
    const content = (message as { content?: unknown } | null)?.content;
    if (Array.isArray(content)) parts += content.length;
  }
  return parts > MAX_CONTENT_PARTS ? `messages: at most ${MAX_CONTENT_PARTS} content parts in all` : undefined;
}

/** A function the model may call; `parameters` defaults to an object with no properties. */
const OpenAiTool = z.object({
  type: z.literal('function'),
  function: z.object({
    name: z.string(),
    description: z.string().nullish(),
    parameters: z.record(z.string(), z.unknown()).nullish(),
    strict: z.boolean().nullish(),
  }),
});

const OpenAiToolChoice = z.union([
  z.enum(['auto', 'none', 'required']),
  z.object({ type: z.literal('function'), function: z.object({ name: z.string() }) }),
]);

/** A call in an assistant message of the history: `arguments` is JSON text, as the API gave it. */
const OpenAiToolCall = z.object({
  id: z.string().min(1).max(128),
  type: z.literal('function'),
  function: z.object({ name: z.string(), arguments: z.string() }),
});

export const ChatCompletionRequest = z.object({
  ...sampling,
  logprobs: z.boolean().nullish(),
  /** Alternatives listed per token; only with `logprobs: true`. */
  top_logprobs: z.number().int().min(0).max(20).nullish(),
  tools: z.array(OpenAiTool).nullish(),
  tool_choice: OpenAiToolChoice.nullish(),
  parallel_tool_calls: z.boolean().nullish(),
  messages: z
    .array(
      z.object({
        role: z.enum(['system', 'developer', 'user', 'assistant', 'tool']),
        content: z.union([z.string(), z.array(TextPart).max(MAX_CONTENT_PARTS)]).nullish(),
        tool_calls: z.array(OpenAiToolCall).max(TOOL_LIMITS.maxTools).nullish(),
        /** On a 'tool' message: the call whose result it is. */
        tool_call_id: z.string().min(1).max(128).nullish(),
      }),
    )
    .min(1)
    .max(MAX_MESSAGES),
  reasoning_effort: OpenAiReasoningEffort.nullish(),
});

export const CompletionRequest = z.object({
  ...sampling,
  /** The legacy shape: how many alternatives each token lists, 0–5. */
  logprobs: z.number().int().min(0).max(5).nullish(),
  /** Chat's field, read only to refuse it here by name (logprobsParamsOf). */
  top_logprobs: z.number().nullish(),
  // LangChain sends the prompt as an array of one string; several prompts would be several choices.
  prompt: z.union([z.string().min(1), z.tuple([z.string().min(1)])], {
    error: 'one prompt per request: a string, or an array of one string',
  }),
});

export type OpenAiTool = z.infer<typeof OpenAiTool>;
export type OpenAiToolChoice = z.infer<typeof OpenAiToolChoice>;
export type OpenAiResponseFormat = z.infer<typeof OpenAiResponseFormat>;
export type ChatCompletionRequest = z.infer<typeof ChatCompletionRequest>;
export type CompletionRequest = z.infer<typeof CompletionRequest>;
