import { z } from 'zod';
import type { Refusal } from '../../../../protocol/index.js';
import type { ChatMessage, ToolCall } from '../../../engine/Engine.js';
import { unsupported } from '../refuseUnsupported.js';

/**
 * The items of a Responses API `input`, checked one by one so that an error names the item:
 * messages, the caller's record of earlier function calls and their outputs, references to items
 * of stored responses, and earlier reasoning (accepted, but not put in the prompt: a next turn
 * sees the answers, not the thoughts, as gpt-oss's Harmony format prescribes).
 */
export type InputItem =
  | { kind: 'message'; message: ChatMessage }
  | { kind: 'function_call'; call: ToolCall }
  | { kind: 'function_call_output'; callId: string; output: string }
  | { kind: 'reference'; id: string }
  | { kind: 'reasoning' };

const MAX_PARTS = 256;
const CallId = z.string().min(1).max(128);
const TextPart = z.object({ type: z.enum(['input_text', 'output_text']), text: z.string() });
const Content = z.union([z.string(), z.array(TextPart).max(MAX_PARTS)]);

const ITEM_SCHEMAS = {
  message: z.object({
    role: z.enum(['user', 'assistant', 'system', 'developer']),
    content: Content,
  }),
  function_call: z.object({ call_id: CallId, name: z.string().min(1).max(64), arguments: z.string() }),
  function_call_output: z.object({ call_id: CallId, output: Content }),
  item_reference: z.object({ id: z.string().min(1).max(200) }),
  reasoning: z.object({}),
} as const;

/** Content part types a text model cannot take, refused by name. */
const MEDIA_PARTS = new Set(['input_image', 'input_file', 'input_audio']);

export function parseInputItems(input: string | readonly unknown[]): InputItem[] | Refusal {
  if (typeof input === 'string') return [{ kind: 'message', message: { role: 'user', content: input } }];
  const items: InputItem[] = [];
  for (const [index, raw] of input.entries()) {
    const item = parseItem(raw, `input[${index}]`);
    if ('code' in item) return item;
    items.push(item);
  }
  return items;
}

function parseItem(raw: unknown, where: string): InputItem | Refusal {
  if (typeof raw !== 'object' || raw === null) return badItem(where, 'an item is an object');
  const fields = raw as Record<string, unknown>;
  // A message may leave out its type (the easy input form: {role, content}).
  const type = fields.type ?? (fields.role === undefined ? undefined : 'message');
  if (typeof type !== 'string') return badItem(where, 'an item has a type');
  if (!(type in ITEM_SCHEMAS))
    return unsupported(`${where}.type`, `${where}.type "${type.slice(0, 64)}": not supported here`);
  const media = mediaPart(fields.content ?? fields.output, where);
  if (media !== undefined) return media;
  const parsed = ITEM_SCHEMAS[type as keyof typeof ITEM_SCHEMAS].safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    return badItem(`${where}${issue?.path.length ? `.${issue.path.join('.')}` : ''}`, issue?.message ?? 'invalid');
  }
  const value = parsed.data as Record<string, unknown>;
  switch (type) {
    case 'message': {
      const role = value.role === 'developer' ? 'system' : (value.role as ChatMessage['role']);
      return { kind: 'message', message: { role, content: textOf(value.content as z.infer<typeof Content>) } };
    }
    case 'function_call':
      return {
        kind: 'function_call',
        call: { id: String(value.call_id), name: String(value.name), arguments: String(value.arguments) },
      };
    case 'function_call_output':
      return {
        kind: 'function_call_output',
        callId: String(value.call_id),
        output: textOf(value.output as z.infer<typeof Content>),
      };
    case 'item_reference':
      return { kind: 'reference', id: String(value.id) };
    default:
      return { kind: 'reasoning' };
  }
}

function mediaPart(content: unknown, where: string): Refusal | undefined {
  if (!Array.isArray(content)) return undefined;
  for (const [index, part] of content.entries()) {
    const type = (part as { type?: unknown } | null)?.type;
    if (typeof type === 'string' && MEDIA_PARTS.has(type))
      return unsupported(
        `${where}.content[${index}].type`,
        `${where}.content[${index}]: "${type}" parts are not supported (only text)`,
      );
  }
  return undefined;
}

function textOf(content: z.infer<typeof Content>): string {
  return typeof content === 'string' ? content : content.map((part) => part.text).join('');
}

function badItem(where: string, message: string): Refusal {
  return { code: 'bad_frame', message: `${where}: ${message}` };
}

/**
 * Appends items to a conversation as chat messages: function calls join the assistant message just
 * before them (one model turn: text, then calls), and each output must answer a call made earlier.
 * `resolve` turns a reference into the items it stands for (or a refusal).
 */
export function appendItems(conversation: ChatMessage[], items: readonly InputItem[]): { ok: true } | Refusal {
  const calls = new Set(conversation.flatMap((message) => (message.toolCalls ?? []).map((call) => call.id)));
  for (const [index, item] of items.entries()) {
    switch (item.kind) {
      case 'message':
        conversation.push(item.message);
        break;
      case 'function_call': {
        const last = conversation.at(-1);
        if (last?.role === 'assistant') conversation[conversation.length - 1] = withCall(last, item.call);
        else conversation.push({ role: 'assistant', content: '', toolCalls: [item.call] });
        calls.add(item.call.id);
        break;
      }
      case 'function_call_output':
        if (!calls.has(item.callId))
          return badItem(
            `input[${index}].call_id`,
            `no function call "${item.callId.slice(0, 128)}" before this output`,
          );
        conversation.push({ role: 'tool', content: item.output, toolCallId: item.callId });
        break;
      case 'reasoning':
      case 'reference':
        break;
      default:
        return item satisfies never;
    }
  }
  return { ok: true };
}

function withCall(message: ChatMessage, call: ToolCall): ChatMessage {
  return { ...message, toolCalls: [...(message.toolCalls ?? []), call] };
}
