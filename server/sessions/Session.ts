import type { HistoryMessage } from '../../protocol/index.js';
import type { ChatMessage } from '../engine/Engine.js';

/** A conversation: its turns, who owns it, and the generation it is running, if any. */
export class Session {
  readonly messages: ChatMessage[] = [];
  activeGenId: string | undefined;

  constructor(
    readonly id: string,
    readonly ownerKey: string,
    /** Whose session budget it counts against. */
    readonly clientKey: string,
    readonly resumeTokenHash: Buffer,
    system: string | undefined,
  ) {
    if (system !== undefined && system !== '') this.messages.push({ role: 'system', content: system });
  }

  get busy(): boolean {
    return this.activeGenId !== undefined;
  }

  /** The prompt of a new turn: the history plus the user's message. */
  promptWith(content: string): ChatMessage[] {
    return [...this.messages, { role: 'user', content }];
  }

  /**
   * Records a finished turn. A turn that produced no answer (cancelled while queued, or failed
   * before its first token) leaves no trace, so the history keeps alternating user/assistant.
   */
  endTurn(userContent: string, answer: string): void {
    this.activeGenId = undefined;
    if (answer === '') return;
    this.messages.push({ role: 'user', content: userContent }, { role: 'assistant', content: answer });
  }

  history(): HistoryMessage[] {
    return this.messages.map(({ role, content }) => ({ role, content }));
  }
}
