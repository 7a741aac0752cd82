import type { GenerationDone, GenerationParams, Token } from '../../protocol/index.js';
import type { TestClient } from './TestClient.js';

let counter = 0;
export const nextId = (prefix = 'r'): string => `${prefix}${++counter}`;

export async function openSession(client: TestClient, system?: string) {
  const id = nextId('open');
  client.send({ type: 'session.open', id, ...(system === undefined ? {} : { system }) });
  return client.next('session.opened', (f) => f.id === id);
}

/** Sends a message and returns its genId once queued. */
export async function startChat(client: TestClient, sessionId: string, content: string, params?: GenerationParams) {
  const id = nextId('chat');
  client.send({ type: 'chat.send', id, sessionId, content, ...(params ? { params } : {}) });
  const queued = await client.next('generation.queued', (f) => f.id === id);
  return queued.genId;
}

export type Answer = { genId: string; text: string; tokens: Token[]; done: GenerationDone };

/** Waits for a generation to end and collects its token frames. */
export async function collect(client: TestClient, genId: string): Promise<Answer> {
  const done = await client.next('generation.done', (f) => f.genId === genId);
  const tokens = client.frames.filter((f): f is Token => f.type === 'token' && f.genId === genId);
  return { genId, text: tokens.map((t) => t.text).join(''), tokens, done };
}

export async function chat(client: TestClient, sessionId: string, content: string, params?: GenerationParams) {
  return collect(client, await startChat(client, sessionId, content, params));
}

/** The history entry an answer leaves: its text, and how it ended unless it simply stopped. */
export function historyEntryOf(answer: Answer) {
  const { finish } = answer.done;
  return finish === 'stop'
    ? { role: 'assistant' as const, content: answer.text }
    : { role: 'assistant' as const, content: answer.text, finish };
}
