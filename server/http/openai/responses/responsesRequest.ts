import { z } from 'zod';
import type { Refusal } from '../../../../protocol/index.js';
import { isEmptyList, refuseFields, type UnsupportedFields, unsupported } from '../refuseUnsupported.js';
import { OpenAiReasoningEffort } from '../requestSchemas.js';

/**
 * The Responses API's request (POST /v1/responses), as far as a local model can honour it. Fields
 * that ask for what the server does not do are refused first (refuseUnsupportedResponseFields);
 * others that only describe the caller (`metadata`, `user`, `safety_identifier`) are ignored.
 * `input` is checked item by item afterwards (inputItems.ts), so that an error names the item.
 */
const MAX_INPUT_ITEMS = 1000;

const FunctionTool = z.object({
  type: z.literal('function'),
  name: z.string().regex(/^[a-zA-Z0-9_-]{1,64}$/, 'a function name is 1–64 letters, digits, _ or -'),
  description: z.string().max(4096).nullish(),
  parameters: z.record(z.string(), z.unknown()).nullish(),
  strict: z.boolean().nullish(),
});

const TextFormat = z.discriminatedUnion('type', [
  z.object({ type: z.literal('text') }),
  z.object({ type: z.literal('json_object') }),
  z.object({
    type: z.literal('json_schema'),
    name: z.string().min(1).max(64).optional(),
    description: z.string().optional(),
    schema: z.record(z.string(), z.unknown()),
    strict: z.boolean().nullish(),
  }),
]);

export const ResponsesRequest = z.object({
  model: z.string().optional(),
  input: z.union([z.string().min(1), z.array(z.unknown()).min(1).max(MAX_INPUT_ITEMS)]),
  instructions: z.string().nullish(),
  previous_response_id: z.string().min(1).max(128).nullish(),
  stream: z.boolean().nullish(),
  store: z.boolean().nullish(),
  max_output_tokens: z.number().int().min(1).nullish(),
  temperature: z.number().min(0).max(2).nullish(),
  top_p: z.number().gt(0).max(1).nullish(),
  tools: z.array(FunctionTool).nullish(),
  tool_choice: z
    .union([z.enum(['auto', 'none', 'required']), z.object({ type: z.literal('function'), name: z.string() })])
    .nullish(),
  parallel_tool_calls: z.boolean().nullish(),
  reasoning: z.object({ effort: OpenAiReasoningEffort.nullish() }).nullish(),
  text: z.object({ format: TextFormat.nullish() }).nullish(),
  prompt_cache_key: z.string().min(1).max(64).nullish(),
  // Old turns that do not fit the context are dropped in either case, as on the chat path.
  truncation: z.enum(['auto', 'disabled']).nullish(),
  // Echoed and stored: OpenAI's bounds.
  metadata: z
    .record(z.string().max(64), z.string().max(512))
    .refine((value) => Object.keys(value).length <= 16, 'at most 16 keys')
    .nullish(),
});

export type ResponsesRequest = z.infer<typeof ResponsesRequest>;
export type FunctionTool = z.infer<typeof FunctionTool>;
export type TextFormat = z.infer<typeof TextFormat>;

/** Fields of the Responses API this server does not implement, with the values that ask for nothing. */
const UNSUPPORTED: UnsupportedFields = {
  background: { harmless: (value) => value === false, why: 'background responses are not supported' },
  conversation: { harmless: () => false, why: 'conversations are not supported; use previous_response_id' },
  prompt: { harmless: () => false, why: 'prompt templates are not supported' },
  include: { harmless: isEmptyList, why: 'no extra output can be included' },
  max_tool_calls: { harmless: () => false, why: 'max_tool_calls is not supported' },
  top_logprobs: { harmless: (value) => value === 0, why: 'log probabilities are not supported on /v1/responses' },
  service_tier: { harmless: (value) => value === 'auto' || value === 'default', why: 'there is one service tier' },
};

/** Nested fields that ask for what the server does not do. */
function refuseNested(body: Record<string, unknown>): Refusal | undefined {
  const reasoning = body.reasoning as Record<string, unknown> | null | undefined;
  for (const field of ['summary', 'generate_summary'] as const) {
    if (reasoning?.[field] != null)
      return unsupported(
        `reasoning.${field}`,
        `reasoning.${field}: reasoning is returned as it is written (reasoning_text), not summarised`,
      );
  }
  const text = body.text as Record<string, unknown> | null | undefined;
  if (text?.verbosity != null && text.verbosity !== 'medium')
    return unsupported('text.verbosity', 'text.verbosity: only "medium" (the model writes as it writes)');
  const tools = body.tools;
  if (Array.isArray(tools)) {
    for (const [index, tool] of tools.entries()) {
      const type = (tool as { type?: unknown } | null)?.type;
      if (typeof type === 'string' && type !== 'function')
        return unsupported(`tools[${index}].type`, `tools[${index}].type "${type}": only function tools are supported`);
    }
  }
  return undefined;
}

/** The first field of the body that asks for something unsupported, as a refusal; null counts as absent. */
export function refuseUnsupportedResponseFields(body: unknown): Refusal | undefined {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return undefined;
  const fields = body as Record<string, unknown>;
  const refused = refuseFields(fields, UNSUPPORTED);
  if (refused !== undefined) return refused;
  return refuseNested(fields);
}
