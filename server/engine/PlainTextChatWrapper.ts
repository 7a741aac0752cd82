import {
  type ChatHistoryItem,
  ChatWrapper,
  type ChatWrapperGenerateContextStateOptions,
  type ChatWrapperGeneratedContextState,
  LlamaText,
  SpecialToken,
} from 'node-llama-cpp';

/**
 * No chat format at all: the prompt is the text as given, and the model continues it. For
 * plain text completions (`POST /v1/completions`).
 */
export class PlainTextChatWrapper extends ChatWrapper {
  readonly wrapperName = 'PlainText';

  override generateContextState({
    chatHistory,
  }: ChatWrapperGenerateContextStateOptions): ChatWrapperGeneratedContextState {
    return {
      contextText: LlamaText([new SpecialToken('BOS'), chatHistory.map(textOf).join('')]),
      stopGenerationTriggers: [LlamaText(new SpecialToken('EOS'))],
    };
  }
}

function textOf(item: ChatHistoryItem): string {
  if (item.type === 'user') return item.text;
  if (item.type === 'system') return LlamaText.fromJSON(item.text).toString();
  return item.response.filter((part): part is string => typeof part === 'string').join('');
}
