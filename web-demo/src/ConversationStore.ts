/** A conversation this browser had: enough to reattach it after a reload. */
export type StoredConversation = { sessionId: string; resumeToken: string; title: string; updatedAt: number };

const LIST_KEY = 'llm-chat:conversations';
const CURRENT_KEY = 'llm-chat:current';
const KEPT = 20;

/** This browser's conversations in localStorage, newest first. */
export class ConversationStore {
  list(): StoredConversation[] {
    try {
      const parsed: unknown = JSON.parse(localStorage.getItem(LIST_KEY) ?? '[]');
      return Array.isArray(parsed) ? (parsed as StoredConversation[]) : [];
    } catch {
      return [];
    }
  }

  current(): StoredConversation | undefined {
    const id = localStorage.getItem(CURRENT_KEY);
    return this.list().find((conversation) => conversation.sessionId === id);
  }

  save(conversation: StoredConversation): void {
    const others = this.list().filter((c) => c.sessionId !== conversation.sessionId);
    localStorage.setItem(LIST_KEY, JSON.stringify([conversation, ...others].slice(0, KEPT)));
    localStorage.setItem(CURRENT_KEY, conversation.sessionId);
  }

  forget(sessionId: string): void {
    localStorage.setItem(LIST_KEY, JSON.stringify(this.list().filter((c) => c.sessionId !== sessionId)));
    if (localStorage.getItem(CURRENT_KEY) === sessionId) localStorage.removeItem(CURRENT_KEY);
  }

  clearCurrent(): void {
    localStorage.removeItem(CURRENT_KEY);
  }
}
