import { describe, expect, it } from 'vitest';
import type { ChatMessage } from '../../server/engine/Engine.js';
import type { GenerationOutcome } from '../../server/scheduler/Generation.js';
import type { Session } from '../../server/sessions/Session.js';
import { type SessionLimits, SessionStore } from '../../server/sessions/SessionStore.js';
import { MemoryStore } from '../../server/store/MemoryStore.js';

const LIMITS: SessionLimits = {
  maxSessions: 100,
  ttlMs: 60_000,
  maxSessionsPerKey: 3,
  maxSessionChars: 50,
  maxCharsPerKey: 100,
  transcriptTtlMs: 60_000,
};

/** Sessions over the memory store; nothing runs in this process. */
const storeWith = (limits: SessionLimits = LIMITS) =>
  new SessionStore(new MemoryStore({ maxSessions: limits.maxSessions }), limits, () => false);

async function open(store: SessionStore, owner: string, system?: string): Promise<Session> {
  const created = await store.create(owner, system);
  if (!('session' in created)) throw new Error(`refused: ${created.message}`);
  return created.session;
}

const user = (content: string): ChatMessage => ({ role: 'user', content });
const stopped: GenerationOutcome = {
  finish: 'stop',
  usage: { promptTokens: 1, completionTokens: 1, cachedPromptTokens: 0 },
  timings: { queuedMs: 0, ttftMs: 1, totalMs: 1 },
};

async function addTurn(store: SessionStore, session: Session, question: string, answer: string) {
  const genId = `g_${Math.random()}`;
  expect(await store.beginTurn(session, genId, user(question))).toBeUndefined();
  await store.endTurn(session, genId, user(question), answer, stopped);
}

describe('SessionStore bounds', () => {
  it("refuses a key's sessions past its own bound and never touches another key's", async () => {
    const store = storeWith();
    const a = await open(store, 'key:a');
    for (let i = 0; i < 3; i++) await open(store, 'key:b');
    expect(await store.create('key:b', undefined)).toMatchObject({
      code: 'rate_limited',
      message: /--max-sessions-per-key/,
    });
    expect(await store.get(a.id)).toBe(a);
    expect(await store.countOf('key:b')).toBe(3);
    expect(await open(store, 'key:a')).toBeDefined();
  });

  it('gives a place back when a session is forgotten on request', async () => {
    const store = storeWith();
    const sessions = [await open(store, 'k'), await open(store, 'k'), await open(store, 'k')];
    expect(await store.create('k', undefined)).toMatchObject({ code: 'rate_limited' });
    await store.forget(sessions[0]?.id ?? '');
    expect(await store.get(sessions[0]?.id ?? '')).toBeUndefined();
    expect(await open(store, 'k')).toBeDefined();
  });

  it('answers session_full past the characters one session may hold', async () => {
    const store = storeWith();
    const session = await open(store, 'k', 'x'.repeat(20));
    expect(await store.checkTurn(session, 10)).toBeUndefined();
    await addTurn(store, session, 'y'.repeat(10), 'z'.repeat(10));
    expect(session.chars).toBe(40);
    expect(await store.checkTurn(session, 11)).toMatchObject({ code: 'session_full', message: /40 of its 50/ });
    expect(await store.checkTurn(session, 10)).toBeUndefined();
  });

  it("refuses a key's new history past its characters, counting every session, and frees them on forget", async () => {
    const store = storeWith({ ...LIMITS, maxSessionChars: 60 });
    const first = await open(store, 'k', 'x'.repeat(45));
    const second = await open(store, 'k', 'x'.repeat(45));
    expect(await store.create('k', 'x'.repeat(20))).toMatchObject({ code: 'rate_limited', message: /90 of its 100/ });
    expect(await store.checkTurn(second, 5)).toBeUndefined();
    expect(await store.checkTurn(second, 11)).toMatchObject({ code: 'rate_limited' });
    expect(await store.create('other', 'x'.repeat(45))).toHaveProperty('session');
    await store.forget(first.id);
    expect(await store.checkTurn(second, 5)).toBeUndefined();
    expect(await store.create('k', 'x'.repeat(20))).toHaveProperty('session');
  });

  it('gives the budget back when unused sessions expire', async () => {
    const store = storeWith({ ...LIMITS, ttlMs: 30 });
    for (let i = 0; i < 3; i++) await open(store, 'k');
    expect(await store.create('k', undefined)).toMatchObject({ code: 'rate_limited' });
    await new Promise((resolve) => setTimeout(resolve, 80));
    expect(await store.countOf('k')).toBe(0);
    expect(await open(store, 'k')).toBeDefined();
  });

  it('claims a session for one turn at a time, in the store', async () => {
    const store = storeWith();
    const session = await open(store, 'k');
    expect(await store.beginTurn(session, 'g_1', user('a'))).toBeUndefined();
    expect(await store.beginTurn(session, 'g_2', user('b'))).toMatchObject({
      code: 'session_busy',
      activeGenId: 'g_1',
    });
    await store.endTurn(session, 'g_1', user('a'), 'answer', { ...stopped, finish: 'length' });
    expect(session.history().at(-1)).toEqual({ role: 'assistant', content: 'answer', finish: 'length' });
    expect(await store.beginTurn(session, 'g_2', user('b'))).toBeUndefined();
  });
});
