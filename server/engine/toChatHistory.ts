import type { ChatHistoryItem, ChatModelFunctionCall, ChatModelResponse } from 'node-llama-cpp';
import type { ChatMessage } from './Engine.js';

/**
 * The messages as node-llama-cpp's chat history, ending with the model's turn to answer. A tool
 * call and its result are one `functionCall` item of the model's response (the wrapper renders
 * both in the model's own format); the answer after the results continues that same response, as
 * node-llama-cpp's chat session does it. So does the generation when the last message is a result.
 */
export function toChatHistory(messages: readonly ChatMessage[]): ChatHistoryItem[] {
  // The calls of the latest answer that called tools, by id: a result belongs to the call it
  // follows (clients reuse ids such as call_0 from turn to turn).
  let awaiting = new Map<string, ChatModelFunctionCall>();
  const history: ChatHistoryItem[] = [];
  for (const message of messages) {
    switch (message.role) {
      case 'system':
        history.push({ type: 'system', text: message.content });
        break;
      case 'user':
        history.push({ type: 'user', text: message.content });
        break;
      case 'assistant': {
        const response = continuedResponse(history) ?? pushModel(history);
        if (message.content !== '') response.push(message.content);
        if (message.toolCalls?.length) awaiting = new Map();
        for (const [index, call] of (message.toolCalls ?? []).entries()) {
          const item = functionCallOf(call, '', index === 0);
          awaiting.set(call.id, item);
          response.push(item);
        }
        break;
      }
      case 'tool': {
        const call = awaiting.get(message.toolCallId ?? '');
        if (call !== undefined) call.result = message.content;
        break;
      }
      default:
        return message.role satisfies never;
    }
  }
  if (continuedResponse(history) === undefined) pushModel(history);
  return history;
}

/** The last model response when it ended with tool calls, whose results were given: the answer goes on there. */
function continuedResponse(history: readonly ChatHistoryItem[]): ChatModelResponse['response'] | undefined {
  const last = history.at(-1);
  if (last?.type !== 'model') return undefined;
  const item = last.response.at(-1);
  return typeof item === 'object' && item.type === 'functionCall' ? last.response : undefined;
}

function pushModel(history: ChatHistoryItem[]): ChatModelResponse['response'] {
  const item: ChatModelResponse = { type: 'model', response: [] };
  history.push(item);
  return item.response;
}

function functionCallOf(
  call: { name: string; arguments: string },
  result: string,
  startsNewChunk: boolean,
): ChatModelFunctionCall {
  return { type: 'functionCall', name: call.name, params: parseArguments(call.arguments), result, startsNewChunk };
}

/** Arguments are checked to be JSON where they enter (HTTP, protocol); a stored one that is not stays text. */
function parseArguments(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}
