import { type Refusal, TOOL_LIMITS, TOOL_NAME } from '../../protocol/index.js';
import type { ChatMessage, ToolChoice, ToolDefinition } from './Engine.js';
import { toGrammarSchema } from './toGrammarSchema.js';

/**
 * Refuses, before the request is queued, tools the server cannot offer: over a bound, a bad or
 * repeated name, a `parameters` schema the grammar cannot enforce (naming the tool and the
 * construct), or a tool choice that names no tool. `field` says where the tools were sent.
 */
export function checkTools(
  tools: readonly ToolDefinition[],
  choice: ToolChoice | undefined,
  field: string,
): Refusal | undefined {
  if (tools.length > TOOL_LIMITS.maxTools)
    return { code: 'payload_too_large', message: `${field}: at most ${TOOL_LIMITS.maxTools} tools`, param: field };
  const names = new Set<string>();
  for (const [index, tool] of tools.entries()) {
    const where = `${field}[${index}]`;
    const refusal = checkTool(tool, where);
    if (refusal !== undefined) return refusal;
    if (names.has(tool.name)) return bad(`${where}.name`, `two tools are named "${tool.name}"`);
    names.add(tool.name);
  }
  if (typeof choice === 'object' && !names.has(choice.name))
    return bad('tool_choice', `tool_choice names "${choice.name}", which is not one of the tools`);
  if (choice !== undefined && choice !== 'none' && choice !== 'auto' && tools.length === 0)
    return bad('tool_choice', `tool_choice "${typeof choice === 'object' ? choice.name : choice}" needs tools`);
  return undefined;
}

function checkTool(tool: ToolDefinition, where: string): Refusal | undefined {
  if (tool.name.length === 0 || tool.name.length > TOOL_LIMITS.maxNameChars || !TOOL_NAME.test(tool.name))
    return bad(
      `${where}.name`,
      `a tool name is 1 to ${TOOL_LIMITS.maxNameChars} letters, digits, "_" or "-" (got ${JSON.stringify(tool.name.slice(0, 80))})`,
    );
  if ((tool.description?.length ?? 0) > TOOL_LIMITS.maxDescriptionChars)
    return tooLarge(
      `${where}.description`,
      `at most ${TOOL_LIMITS.maxDescriptionChars} characters (tool "${tool.name}")`,
    );
  if (JSON.stringify(tool.parameters).length > TOOL_LIMITS.maxSchemaChars)
    return tooLarge(
      `${where}.parameters`,
      `at most ${TOOL_LIMITS.maxSchemaChars} characters of JSON (tool "${tool.name}")`,
    );
  const converted = toGrammarSchema(tool.parameters);
  if (!('error' in converted)) return undefined;
  const { path, message } = converted.error;
  return bad(`${where}.parameters`, `tool "${tool.name}"${path === '' ? '' : ` at ${path}`}: ${message}`);
}

/**
 * Refuses a history whose tool messages do not fit its calls: a result for no earlier call (or
 * one already answered), a call left without its result before the conversation goes on, or
 * arguments that are not JSON or over the bound. `field` names the messages' list.
 */
export function checkToolHistory(messages: readonly ChatMessage[], field: string): Refusal | undefined {
  const open = new Set<string>();
  for (const [index, message] of messages.entries()) {
    const where = `${field}[${index}]`;
    if (message.role === 'tool') {
      const id = message.toolCallId ?? '';
      if (!open.delete(id))
        return bad(`${where}.tool_call_id`, `"${id}" answers no earlier tool call still waiting for its result`);
      continue;
    }
    if (open.size > 0) return bad(`${where}`, `the tool call "${[...open][0]}" has no result before this message`);
    for (const [callIndex, call] of (message.toolCalls ?? []).entries()) {
      const refusal = checkArguments(call.arguments, `${where}.tool_calls[${callIndex}].function.arguments`);
      if (refusal !== undefined) return refusal;
      open.add(call.id);
    }
  }
  const [waiting] = open;
  return waiting === undefined ? undefined : bad(field, `the tool call "${waiting}" has no result`);
}

function checkArguments(text: string, where: string): Refusal | undefined {
  if (text.length > TOOL_LIMITS.maxArgumentsChars)
    return tooLarge(where, `at most ${TOOL_LIMITS.maxArgumentsChars} characters`);
  try {
    JSON.parse(text);
    return undefined;
  } catch {
    return bad(where, 'is not valid JSON');
  }
}

function bad(param: string, message: string): Refusal {
  return { code: 'bad_frame', message: `${param}: ${message}`, param };
}

function tooLarge(param: string, message: string): Refusal {
  return { code: 'payload_too_large', message: `${param}: ${message}`, param };
}
