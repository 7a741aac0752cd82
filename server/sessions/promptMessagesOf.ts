import type { HistoryMessage } from '../../protocol/index.js';
import type { ChatMessage } from '../engine/Engine.js';
import type { StoredMessage } from '../store/Store.js';
import { toolResultsOf } from '../store/turns.js';

/** A stored 'tool' message's results as the engine's messages, made once per stored object. */
const expanded = new WeakMap<StoredMessage, readonly ChatMessage[]>();

/**
 * A stored history as the engine's messages: each stored message as is (the same object, so the
 * engine's token count of it is kept), but a turn's tool results, stored as one message, as one
 * 'tool' message per result.
 */
export function promptMessagesOf(messages: readonly StoredMessage[]): ChatMessage[] {
  return messages.flatMap((message) => {
    if (message.role !== 'tool') return [message];
    let results = expanded.get(message);
    if (results === undefined) {
      results = toolResultsOf(message).map(
        ({ callId, content }): ChatMessage => ({ role: 'tool', content, toolCallId: callId }),
      );
      expanded.set(message, results);
    }
    return results;
  });
}

/** A stored history as protocol v1 gives it (session.opened): one 'tool' entry per result, calls with `callId`. */
export function historyOf(messages: readonly StoredMessage[]): HistoryMessage[] {
  return messages.flatMap((message): HistoryMessage[] => {
    if (message.role === 'tool')
      return toolResultsOf(message).map(({ callId, content }) => ({ role: 'tool', content, callId }));
    const { role, content, finish, toolCalls } = message;
    return [
      {
        role,
        content,
        ...(finish === undefined ? {} : { finish }),
        ...(toolCalls === undefined
          ? {}
          : { toolCalls: toolCalls.map((call) => ({ callId: call.id, name: call.name, arguments: call.arguments })) }),
      },
    ];
  });
}
