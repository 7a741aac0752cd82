import type { Refusal } from '../../../../protocol/index.js';
import type { ChatMessage } from '../../../engine/Engine.js';
import type { Store } from '../../../store/Store.js';
import type { InputItem } from './inputItems.js';
import { type FunctionCallItem, type OutputItem, parseOutputItemId } from './ResponseBuilder.js';

/**
 * What the store keeps of a response: the object as it was answered (for GET /v1/responses/{id}
 * and item references) and the conversation a next response continues from — every message
 * before it but the instructions (OpenAI does not carry them over), then its own answer.
 */
export type ResponseRecord = {
  response: { id: string; output: OutputItem[] } & Record<string, unknown>;
  conversation: ChatMessage[];
};

export async function saveResponse(
  store: Store,
  ownerKey: string,
  record: ResponseRecord,
  ttlMs: number,
): Promise<void> {
  await store.saveResponse({ id: record.response.id, ownerKey, body: JSON.stringify(record) }, ttlMs);
}

/** The owner's stored response; another owner's reads as unknown, so ids cannot be probed. */
export async function loadResponse(store: Store, ownerKey: string, id: string): Promise<ResponseRecord | Refusal> {
  const stored = await store.loadResponse(id);
  if (stored === undefined || stored.ownerKey !== ownerKey)
    return {
      code: 'not_found',
      message: `No stored response "${id.slice(0, 128)}" (unknown, expired, or stored with store: false)`,
    };
  return JSON.parse(stored.body) as ResponseRecord;
}

/**
 * Replaces each `item_reference` by the output item it names (ids say which response holds them:
 * see outputItemId), read from the store once per response.
 */
export async function resolveReferences(
  store: Store,
  ownerKey: string,
  items: readonly InputItem[],
): Promise<InputItem[] | Refusal> {
  const records = new Map<string, ResponseRecord | Refusal>();
  const resolved: InputItem[] = [];
  for (const [index, item] of items.entries()) {
    if (item.kind !== 'reference') {
      resolved.push(item);
      continue;
    }
    const notFound: Refusal = {
      code: 'not_found',
      message: `input[${index}]: no stored item "${item.id.slice(0, 128)}"`,
      param: `input[${index}].id`,
    };
    const named = parseOutputItemId(item.id);
    if (named === undefined) return notFound;
    let record = records.get(named.key);
    if (record === undefined) {
      record = await loadResponse(store, ownerKey, `resp_${named.key}`);
      records.set(named.key, record);
    }
    const output = 'code' in record ? undefined : record.response.output[named.index];
    if (output === undefined || output.id !== item.id) return notFound;
    resolved.push(inputItemOf(output));
  }
  return resolved;
}

function inputItemOf(item: OutputItem): InputItem {
  switch (item.type) {
    case 'message':
      return {
        kind: 'message',
        message: { role: 'assistant', content: item.content.map((part) => part.text).join('') },
      };
    case 'function_call':
      return { kind: 'function_call', call: { id: item.call_id, name: item.name, arguments: item.arguments } };
    case 'reasoning':
      return { kind: 'reasoning' };
    default:
      return item satisfies never;
  }
}

/** A response's answer as the messages a next turn sees: its text and calls, not its reasoning. */
export function answerMessages(output: readonly OutputItem[]): ChatMessage[] {
  const content = output
    .filter((item) => item.type === 'message')
    .map((item) => item.content.map((part) => part.text).join(''))
    .join('');
  // A call cut short (its arguments unfinished JSON) is not one a next turn can answer.
  const toolCalls = output
    .filter((item): item is FunctionCallItem => item.type === 'function_call' && item.status === 'completed')
    .map((item) => ({ id: item.call_id, name: item.name, arguments: item.arguments }));
  if (content === '' && toolCalls.length === 0) return [];
  return [{ role: 'assistant', content, ...(toolCalls.length === 0 ? {} : { toolCalls }) }];
}
