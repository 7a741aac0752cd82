import type { ConversationStore, StoredConversation } from './ConversationStore.js';

export const NEW_CHAT_TITLE = 'New chat';

/** The list of this browser's conversations (a select), drawn from the store; choosing one reattaches it. */
export class ConversationPicker {
  constructor(
    readonly select: HTMLSelectElement,
    private readonly store: ConversationStore,
    onChoose: (conversation: StoredConversation) => void,
  ) {
    select.addEventListener('change', () => {
      const chosen = store.find(select.value);
      if (chosen !== undefined) onChoose(chosen);
    });
  }

  render(currentSessionId: string | undefined): void {
    this.select.replaceChildren(
      ...this.store.list().map((conversation) => {
        const option = document.createElement('option');
        option.value = conversation.sessionId;
        option.textContent = conversation.title;
        option.selected = conversation.sessionId === currentSessionId;
        return option;
      }),
    );
  }

  /** A new conversation is named after its first message. */
  title(firstMessage: string): void {
    const current = this.store.current();
    if (current === undefined || current.title !== NEW_CHAT_TITLE) return;
    this.store.save({ ...current, title: firstMessage.slice(0, 40), updatedAt: Date.now() });
    this.render(current.sessionId);
  }
}
