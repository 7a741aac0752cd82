import type { HistoryMessage } from '../../protocol/serverFrames.js';
import { describeFinish } from './describeAnswer.js';
import { MessageView } from './MessageView.js';

/** The messages, kept scrolled to the newest line unless the reader scrolled up. */
export class ChatLog {
  constructor(private readonly element: HTMLElement) {}

  /** Shows a conversation's history, with a note under each answer that did not simply stop. */
  show(history: HistoryMessage[]): void {
    this.element.replaceChildren();
    for (const message of history) {
      // The widget sends no tools; a session used by a bot may still hold tool results.
      if (message.role === 'system' || message.role === 'tool') continue;
      const view = MessageView.complete(this.element, message.role, message.content);
      const note = message.finish === undefined ? undefined : describeFinish(message.finish);
      if (note !== undefined) view.note(note);
    }
    this.element.scrollTop = this.element.scrollHeight;
  }

  addQuestion(text: string): MessageView {
    return this.stickToBottom(() => MessageView.complete(this.element, 'user', text));
  }

  /** An answer about to stream: rendered once per animation frame, the log following it. */
  addAnswer(): MessageView {
    const view = this.stickToBottom(
      () =>
        new MessageView(this.element, 'assistant', (render) => requestAnimationFrame(() => this.stickToBottom(render))),
    );
    view.streaming = true;
    return view;
  }

  /** The answer ended: its last block is rendered as final. */
  finish(view: MessageView): void {
    this.stickToBottom(() => view.finish());
  }

  private stickToBottom<T>(change: () => T): T {
    const log = this.element;
    const atBottom = log.scrollTop + log.clientHeight >= log.scrollHeight - 24;
    const result = change();
    if (atBottom) log.scrollTop = log.scrollHeight;
    return result;
  }
}
