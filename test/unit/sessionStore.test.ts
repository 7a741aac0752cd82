import { describe, expect, it } from 'vitest';
import type { ChatMessage } from '../../server/engine/Engine.js';
import type { Session } from '../../server/sessions/Session.js';
import { type SessionLimits, SessionStore } from '../../server/sessions/SessionStore.js';

const LIMITS: SessionLimits = {
  maxSessions: 100,
  ttlMs: 60_000,
  maxSessionsPerKey: 3,
  maxSessionChars: 50,
  maxCharsPerKey: 100,
};

function open(store: SessionStore, owner: string, system?: string): Session {
  const created = store.create(owner, system);
  if (!('session' in created)) throw new Error(`refused: ${created.message}`);
  return created.session;
}

const user = (content: string): ChatMessage => ({ role: 'user', content });

describe('SessionStore bounds', () => {
  it("refuses a key's sessions past its own bound and never touches another key's", () => {
    const store = new SessionStore(LIMITS);
    const a = open(store, 'key:a');
    for (let i = 0; i < 3; i++) open(store, 'key:b');
    expect(store.create('key:b', undefined)).toMatchObject({ code: 'rate_limited', message: /--max-sessions-per-key/ });
    expect(store.get(a.id)).toBe(a);
    expect(store.countOf('key:b')).toBe(3);
    expect(open(store, 'key:a')).toBeDefined();
  });

  it('gives a place back when a session is forgotten on request', () => {
    const store = new SessionStore(LIMITS);
    const sessions = [open(store, 'k'), open(store, 'k'), open(store, 'k')];
    expect(store.create('k', undefined)).toMatchObject({ code: 'rate_limited' });
    store.forget(sessions[0]?.id ?? '');
    expect(store.get(sessions[0]?.id ?? '')).toBeUndefined();
    expect(open(store, 'k')).toBeDefined();
  });

  it('answers session_full past the characters one session may hold', () => {
    const store = new SessionStore(LIMITS);
    const session = open(store, 'k', 'x'.repeat(20));
    expect(store.checkTurn(session, 10)).toBeUndefined();
    store.addTurn(session, user('y'.repeat(10)), 'z'.repeat(10));
    expect(session.chars).toBe(40);
    expect(store.checkTurn(session, 11)).toMatchObject({ code: 'session_full', message: /40 of its 50/ });
    expect(store.checkTurn(session, 10)).toBeUndefined();
  });

  it("refuses a key's new history past its characters, counting every session, and frees them on forget", () => {
    const store = new SessionStore({ ...LIMITS, maxSessionChars: 60 });
    const first = open(store, 'k', 'x'.repeat(45));
    const second = open(store, 'k', 'x'.repeat(45));
    expect(store.create('k', 'x'.repeat(20))).toMatchObject({ code: 'rate_limited', message: /90 of its 100/ });
    expect(store.checkTurn(second, 5)).toBeUndefined();
    expect(store.checkTurn(second, 11)).toMatchObject({ code: 'rate_limited' });
    expect(store.create('other', 'x'.repeat(45))).toHaveProperty('session');
    store.forget(first.id);
    expect(store.checkTurn(second, 5)).toBeUndefined();
    expect(store.create('k', 'x'.repeat(20))).toHaveProperty('session');
  });

  it('gives the budget back when unused sessions expire', async () => {
    const store = new SessionStore({ ...LIMITS, ttlMs: 30 });
    for (let i = 0; i < 3; i++) open(store, 'k');
    expect(store.create('k', undefined)).toMatchObject({ code: 'rate_limited' });
    await new Promise((resolve) => setTimeout(resolve, 80));
    expect(store.countOf('k')).toBe(0);
    expect(open(store, 'k')).toBeDefined();
  });
});
