import type { HistoryMessage } from '../../protocol/index.js';
import type { ChatMessage } from '../engine/Engine.js';

/** A conversation: its turns, who owns it, and the generation it is running, if any. */
export class Session {
  readonly messages: ChatMessage[] = [];
  activeGenId: string | undefined;
  /** Characters of all its messages: what it costs its owner's budget. */
  chars = 0;

  constructor(
    readonly id: string,
    /** Who may reattach it, and whose session budget it counts against. */
    readonly ownerKey: string,
    readonly resumeTokenHash: Buffer,
    system: string | undefined,
  ) {
    if (system !== undefined && system !== '') this.push({ role: 'system', content: system });
  }

  get busy(): boolean {
    return this.activeGenId !== undefined;
  }

  /** The prompt of a new turn: the history plus the user's message (the last entry). */
  promptWith(content: string): ChatMessage[] {
    return [...this.messages, { role: 'user', content }];
  }

  /**
   * Records a finished turn with the user message of its prompt (the same object, so the engine's
   * token count of it is kept). A turn that produced no answer (cancelled while queued, or failed
   * before its first token) leaves no trace, so the history keeps alternating user/assistant.
   */
  endTurn(userMessage: ChatMessage, answer: string): void {
    this.activeGenId = undefined;
    if (answer === '') return;
    this.push(userMessage);
    this.push({ role: 'assistant', content: answer });
  }

  private push(message: ChatMessage): void {
    this.messages.push(message);
    this.chars += message.content.length;
  }

  history(): HistoryMessage[] {
    return this.messages.map(({ role, content }) => ({ role, content }));
  }
}
