import type { Refusal } from '../../../protocol/index.js';
import { checkToolHistory, checkTools } from '../../engine/checkTools.js';
import type { ChatMessage, SamplingParams, ToolChoice, ToolDefinition } from '../../engine/Engine.js';
import type { ChatCompletionRequest } from './requestSchemas.js';

type ToolParams = Pick<SamplingParams, 'tools' | 'toolChoice' | 'parallelToolCalls'>;

/** A tool without `parameters` takes none: an empty object. */
const NO_PARAMETERS = { type: 'object', properties: {}, additionalProperties: false };

/**
 * OpenAI's `tools`, `tool_choice` and `parallel_tool_calls` as the engine's, or the refusal of
 * tools it cannot offer (see checkTools). A response format other than text cannot be combined
 * with tools the model may call: node-llama-cpp constrains an answer by one grammar or the other.
 */
export function toolsOf(body: ChatCompletionRequest): ToolParams | Refusal {
  const tools: ToolDefinition[] = (body.tools ?? []).map(({ function: f }) => ({
    name: f.name,
    ...(f.description == null ? {} : { description: f.description }),
    parameters: f.parameters ?? NO_PARAMETERS,
  }));
  const choice = toolChoiceOf(body.tool_choice);
  const refusal = checkTools(tools, choice, 'tools');
  if (refusal !== undefined) return refusal;
  if (tools.length === 0 || choice === 'none') return {};
  const format = body.response_format?.type;
  if (format !== undefined && format !== 'text')
    return {
      code: 'unsupported_parameter',
      message: 'response_format: cannot be combined with tools unless tool_choice is "none"',
      param: 'response_format',
    };
  return {
    tools,
    ...(choice === undefined ? {} : { toolChoice: choice }),
    ...(body.parallel_tool_calls == null ? {} : { parallelToolCalls: body.parallel_tool_calls }),
  };
}

function toolChoiceOf(choice: ChatCompletionRequest['tool_choice']): ToolChoice | undefined {
  if (choice == null) return undefined;
  return typeof choice === 'string' ? choice : { name: choice.function.name };
}

/** The request's messages as the engine's, tool calls and results included, or why their tool parts do not fit. */
export function messagesOf(body: ChatCompletionRequest): ChatMessage[] | Refusal {
  const messages = body.messages.map((m): ChatMessage => {
    const content = typeof m.content === 'string' ? m.content : (m.content ?? []).map((part) => part.text).join('');
    const role = m.role === 'developer' ? 'system' : m.role;
    const calls = m.role === 'assistant' ? (m.tool_calls ?? []) : [];
    return {
      role,
      content,
      ...(calls.length === 0
        ? {}
        : { toolCalls: calls.map((c) => ({ id: c.id, name: c.function.name, arguments: c.function.arguments })) }),
      ...(role === 'tool' ? { toolCallId: m.tool_call_id ?? '' } : {}),
    };
  });
  return checkToolHistory(messages, 'messages') ?? messages;
}
