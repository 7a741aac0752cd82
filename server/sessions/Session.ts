import type { FinishReason, HistoryMessage } from '../../protocol/index.js';
import type { ChatMessage, SamplingParams, ToolCall } from '../engine/Engine.js';
import type { StoredMessage, StoredSession } from '../store/Store.js';
import { answerMessage, isEmptyTurn } from '../store/turns.js';
import { historyOf, promptMessagesOf } from './promptMessagesOf.js';

/**
 * A conversation as this process works on it: its turns, who owns it, and the generation it is
 * running, if any. The store holds the lasting copy; this one keeps its message objects from turn
 * to turn, so that the engine's token counts of them are kept.
 */
export class Session {
  readonly id: string;
  /** Who may reattach it, and whose session budget it counts against. */
  readonly ownerKey: string;
  readonly resumeTokenHash: string;
  readonly messages: StoredMessage[];
  activeGenId: string | undefined;
  /**
   * While the last answer's calls wait for results: the results so far, and the params of the turn
   * that made the calls (its tools), for the generation that follows. Kept in this process only.
   */
  toolTurn: { params: SamplingParams; results: Map<string, string> } | undefined;
  /** Characters of all its messages: what it costs its owner's budget. */
  chars: number;

  constructor(stored: StoredSession) {
    this.id = stored.id;
    this.ownerKey = stored.ownerKey;
    this.resumeTokenHash = stored.resumeTokenHash;
    this.messages = stored.messages;
    this.chars = stored.chars;
    this.activeGenId = stored.activeGenId;
  }

  /**
   * Records a finished turn with the user message of its prompt (the same object, so the engine's
   * token count of it is kept), as the store did. A turn that produced no answer (cancelled while
   * queued, or failed before its first token) leaves no trace, so the history keeps alternating.
   */
  endTurn(userMessage: StoredMessage, answer: string, finish: FinishReason, toolCalls: readonly ToolCall[] = []): void {
    this.activeGenId = undefined;
    if (isEmptyTurn({ answer, toolCalls })) return;
    const added = [userMessage, answerMessage(answer, finish, toolCalls)];
    this.messages.push(...added);
    for (const message of added) this.chars += message.content.length;
  }

  history(): HistoryMessage[] {
    return historyOf(this.messages);
  }

  /** The messages as the engine takes them (a turn's tool results one message each). */
  prompt(): ChatMessage[] {
    return promptMessagesOf(this.messages);
  }

  /** The calls of the last answer, when it ended by calling tools: they wait for their results. */
  waitingCalls(): readonly ToolCall[] {
    const last = this.messages.at(-1);
    return last?.role === 'assistant' && last.finish === 'tool_calls' ? (last.toolCalls ?? []) : [];
  }
}
