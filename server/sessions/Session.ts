import type { FinishReason, HistoryMessage } from '../../protocol/index.js';
import type { ChatMessage } from '../engine/Engine.js';
import type { StoredMessage, StoredSession } from '../store/Store.js';
import { answerMessage } from '../store/turns.js';

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
  endTurn(userMessage: ChatMessage, answer: string, finish: FinishReason): void {
    this.activeGenId = undefined;
    if (answer === '') return;
    const added = [userMessage, answerMessage(answer, finish)];
    this.messages.push(...added);
    for (const message of added) this.chars += message.content.length;
  }

  history(): HistoryMessage[] {
    return this.messages.map(({ role, content, finish }) =>
      finish === undefined ? { role, content } : { role, content, finish },
    );
  }
}
