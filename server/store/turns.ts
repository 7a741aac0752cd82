import type { FinishReason } from '../../protocol/index.js';
import type { StoredChunk, StoredMessage, StoredOutcome } from './Store.js';

/** The assistant message a turn leaves in the history: how it ended, unless it simply stopped. */
export function answerMessage(answer: string, finish: FinishReason): StoredMessage {
  return finish === 'stop' ? { role: 'assistant', content: answer } : { role: 'assistant', content: answer, finish };
}

/** The answer a transcript holds: its content channel, without reasoning. */
export function contentOf(chunks: readonly StoredChunk[]): string {
  let text = '';
  for (const chunk of chunks) if (chunk.channel === 'content') text += chunk.text;
  return text;
}

/** The outcome of a generation whose instance died: what it had streamed is all there is. */
export function interruptedOutcome(chunks: readonly StoredChunk[]): StoredOutcome {
  return {
    finish: 'interrupted',
    usage: { promptTokens: 0, completionTokens: chunks.at(-1)?.seq ?? 0, cachedPromptTokens: 0 },
    timings: { queuedMs: 0, ttftMs: null, totalMs: 0 },
  };
}
