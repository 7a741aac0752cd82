/** An answer that was streaming when the page was left: enough to show it again and resume it. */
export type RunningAnswer = {
  genId: string;
  /** The message it answers (the server's history holds a turn only once it has ended). */
  question: string;
  /** Entries in the server's history before this turn: more than that + 2 means it has ended and is there. */
  historyLength: number;
};

/** A conversation this browser had: enough to reattach it after a reload. */
export type StoredConversation = {
  sessionId: string;
  resumeToken: string;
  title: string;
  updatedAt: number;
  running?: RunningAnswer;
};

const LIST_KEY = 'llm-chat:conversations';
const CURRENT_KEY = 'llm-chat:current';
const KEPT = 20;

/**
 * This browser's conversations in localStorage, newest first. localStorage rather than
 * sessionStorage: another tab, or the page opened again, picks up a running answer too.
 */
export class ConversationStore {
  list(): StoredConversation[] {
    try {
      const parsed: unknown = JSON.parse(localStorage.getItem(LIST_KEY) ?? '[]');
      return Array.isArray(parsed) ? (parsed as StoredConversation[]) : [];
    } catch {
      return [];
    }
  }

  find(sessionId: string): StoredConversation | undefined {
    return this.list().find((conversation) => conversation.sessionId === sessionId);
  }

  current(): StoredConversation | undefined {
    const id = localStorage.getItem(CURRENT_KEY);
    return id === null ? undefined : this.find(id);
  }

  save(conversation: StoredConversation): void {
    this.write([conversation, ...this.list().filter((c) => c.sessionId !== conversation.sessionId)]);
    localStorage.setItem(CURRENT_KEY, conversation.sessionId);
  }

  /** Notes (or, with undefined, forgets) the answer streaming in a conversation, keeping its place in the list. */
  setRunning(sessionId: string, running: RunningAnswer | undefined, onlyGenId?: string): void {
    this.write(
      this.list().map((c) => {
        if (c.sessionId !== sessionId || (onlyGenId !== undefined && c.running?.genId !== onlyGenId)) return c;
        const { running: _, ...rest } = c;
        return running === undefined ? rest : { ...rest, running };
      }),
    );
  }

  forget(sessionId: string): void {
    this.write(this.list().filter((c) => c.sessionId !== sessionId));
    if (localStorage.getItem(CURRENT_KEY) === sessionId) localStorage.removeItem(CURRENT_KEY);
  }

  clearCurrent(): void {
    localStorage.removeItem(CURRENT_KEY);
  }

  private write(list: StoredConversation[]): void {
    localStorage.setItem(LIST_KEY, JSON.stringify(list.slice(0, KEPT)));
  }
}
