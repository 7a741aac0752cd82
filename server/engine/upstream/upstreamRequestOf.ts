import { createHash } from 'node:crypto';
import type { ChatMessage, EngineRequest, SamplingParams } from '../Engine.js';

/**
 * What an upstream turned out to be when it was probed: it decides the extras it is sent
 * (llama-server's `cache_prompt`; this server's `prompt_cache_key`, which keeps a conversation on
 * its warm sequence) and how its load is read.
 */
export type UpstreamKind = 'llm-chat-server' | 'llama-server' | 'openai';

export type UpstreamRequest = { path: '/chat/completions' | '/completions'; body: Record<string, unknown> };

/** The streaming request for one generation: chat messages, or a plain prompt to continue. */
export function upstreamRequestOf(request: EngineRequest, model: string, kind: UpstreamKind): UpstreamRequest {
  const { params } = request;
  const body: Record<string, unknown> = {
    model,
    stream: true,
    stream_options: { include_usage: true },
    max_tokens: params.maxTokens,
    ...defined({
      temperature: params.temperature,
      top_p: params.topP,
      top_k: params.topK,
      min_p: params.minP,
      seed: params.seed,
      stop: params.stop,
    }),
  };
  if (kind === 'llama-server') body.cache_prompt = true;
  const format = responseFormatOf(params.responseFormat);
  if (format !== undefined) body.response_format = format;
  if (kind === 'llm-chat-server' && request.affinityKey !== undefined) {
    // A digest: the session id means nothing upstream, and is not handed out.
    body.prompt_cache_key = createHash('sha256').update(request.affinityKey).digest('base64url').slice(0, 22);
  }
  if (request.format === 'text') {
    return { path: '/completions', body: { ...body, prompt: request.messages.map((m) => m.content).join('') } };
  }
  const messages = request.messages.map(messageOf);
  Object.assign(body, toolsOf(params));
  return { path: '/chat/completions', body: { ...body, messages, ...defined({ reasoning_effort: params.reasoning }) } };
}

/** A message as OpenAI's API takes it: an assistant's tool calls, a tool result with the call it answers. */
function messageOf({ role, content, toolCalls, toolCallId }: ChatMessage): Record<string, unknown> {
  if (role === 'tool') return { role, content, tool_call_id: toolCallId };
  if (toolCalls === undefined || toolCalls.length === 0) return { role, content };
  const calls = toolCalls.map((call) => ({
    id: call.id,
    type: 'function',
    function: { name: call.name, arguments: call.arguments },
  }));
  return { role, content: content === '' ? null : content, tool_calls: calls };
}

/** The tools and the choice, forwarded as they came: the upstream produces and constrains the calls. */
function toolsOf({ tools = [], toolChoice, parallelToolCalls }: SamplingParams): Record<string, unknown> {
  if (tools.length === 0) return {};
  const choice =
    typeof toolChoice === 'object' ? { type: 'function', function: { name: toolChoice.name } } : toolChoice;
  return {
    tools: tools.map((tool) => ({
      type: 'function',
      function: { name: tool.name, parameters: tool.parameters, ...defined({ description: tool.description }) },
    })),
    ...defined({ tool_choice: choice, parallel_tool_calls: parallelToolCalls }),
  };
}

/** Structured output as OpenAI's API takes it (the upstream constrains it with its own grammar). */
function responseFormatOf(format: SamplingParams['responseFormat']): Record<string, unknown> | undefined {
  if (format === undefined || format.type === 'text') return undefined;
  if (format.type === 'json_object') return { type: 'json_object' };
  return { type: 'json_schema', json_schema: { name: format.name ?? 'response', schema: format.schema, strict: true } };
}

function defined(fields: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(fields).filter(([, value]) => value !== undefined));
}
