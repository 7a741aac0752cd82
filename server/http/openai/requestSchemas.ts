import { z } from 'zod';

/** The fields of OpenAI's requests that apply to a local model; others are ignored, as OpenAI-compatible servers do. */
const sampling = {
  model: z.string().optional(),
  max_tokens: z.number().int().min(1).nullish(),
  max_completion_tokens: z.number().int().min(1).nullish(),
  temperature: z.number().min(0).max(2).nullish(),
  top_p: z.number().gt(0).max(1).nullish(),
  seed: z.number().int().min(0).max(4_294_967_295).nullish(),
  stop: z.union([z.string().min(1), z.array(z.string().min(1)).max(8)]).nullish(),
  stream: z.boolean().nullish(),
  stream_options: z.object({ include_usage: z.boolean().optional() }).nullish(),
  n: z.literal(1).nullish(),
};

const TextPart = z.object({ type: z.literal('text'), text: z.string() });

export const ChatCompletionRequest = z.object({
  ...sampling,
  messages: z
    .array(
      z.object({
        role: z.enum(['system', 'developer', 'user', 'assistant']),
        content: z.union([z.string(), z.array(TextPart)]).nullish(),
      }),
    )
    .min(1)
    .max(1000),
  reasoning_effort: z.enum(['low', 'medium', 'high']).nullish(),
});

export const CompletionRequest = z.object({
  ...sampling,
  prompt: z.string().min(1),
});

export type ChatCompletionRequest = z.infer<typeof ChatCompletionRequest>;
export type CompletionRequest = z.infer<typeof CompletionRequest>;
