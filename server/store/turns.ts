import type { FinishReason } from '../../protocol/index.js';
import type { StoredChunk, StoredMessage, StoredOutcome, StoredToolCall } from './Store.js';

/**
 * The assistant message a turn leaves in the history: how it ended, unless it simply stopped,
 * and the tools it called, if any.
 */
export function answerMessage(
  answer: string,
  finish: FinishReason,
  toolCalls: readonly StoredToolCall[] = [],
): StoredMessage {
  const message: StoredMessage = { role: 'assistant', content: answer };
  if (finish !== 'stop') message.finish = finish;
  if (toolCalls.length > 0) message.toolCalls = toolCalls;
  return message;
}

/** A turn that leaves nothing in the history: no answer and no call (cancelled while queued, or failed at once). */
export function isEmptyTurn(turn: { answer: string; toolCalls?: readonly unknown[] }): boolean {
  return turn.answer === '' && (turn.toolCalls?.length ?? 0) === 0;
}

/** The tool fields of a message, kept beside its role and content (SQLite's tools_json); undefined when none. */
export function toolFieldsOf(message: StoredMessage): Pick<StoredMessage, 'toolCalls' | 'toolResults'> | undefined {
  if (message.toolCalls !== undefined) return { toolCalls: message.toolCalls };
  if (message.toolResults !== undefined) return { toolResults: message.toolResults };
  return undefined;
}

/** One 'tool' message holding a turn's results, in the order given: what the turn after the calls begins with. */
export function toolResultsMessage(results: readonly { callId: string; content: string }[]): StoredMessage {
  return {
    role: 'tool',
    content: results.map((result) => result.content).join(''),
    toolResults: results.map((result) => ({ callId: result.callId, chars: result.content.length })),
  };
}

/** The results a 'tool' message holds, each with its text. */
export function toolResultsOf(message: StoredMessage): { callId: string; content: string }[] {
  let start = 0;
  return (message.toolResults ?? []).map(({ callId, chars }) => {
    const content = message.content.slice(start, start + chars);
    start += chars;
    return { callId, content };
  });
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
