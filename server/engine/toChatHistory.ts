import type { ChatHistoryItem, ChatModelFunctionCall, ChatModelResponse } from 'node-llama-cpp';
import type { ChatMessage } from './Engine.js';

/**
 * The messages as node-llama-cpp's chat history, ending with the model's turn to answer. A tool
 * call and its result are one `functionCall` item of the model's response (the wrapper renders
 * both in the model's own format); the answer after the results continues that same response, as
 * node-llama-cpp's chat session does it. So does the generation when the last message is a result.
 */
export function toChatHistory(messages: readonly ChatMessage[]): ChatHistoryItem[] {
  const results = new Map<string, string>();
  for (const message of messages)
    if (message.role === 'tool' && message.toolCallId !== undefined) results.set(message.toolCallId, message.content);
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
        for (const [index, call] of (message.toolCalls ?? []).entries())
          response.push(functionCallOf(call, results.get(call.id) ?? '', index === 0));
        break;
      }
      case 'tool':
        break;
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
