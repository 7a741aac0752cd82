import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'libsql';
import { afterAll, describe, expect, it } from 'vitest';
import { SqliteStore } from '../../server/store/SqliteStore.js';
import type { StoredOutcome } from '../../server/store/Store.js';
import { MIGRATIONS, migrate } from '../../server/store/sqliteSchema.js';

const dir = mkdtempSync(join(tmpdir(), 'llm-chat-sqlite-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const outcome: StoredOutcome = {
  finish: 'stop',
  usage: { promptTokens: 3, completionTokens: 2, cachedPromptTokens: 0 },
  timings: { queuedMs: 0, ttftMs: 1, totalMs: 2 },
};

describe('SqliteStore', () => {
  it('keeps sessions, turns and transcripts, and ends a turn in one step', async () => {
    const store = SqliteStore.open(join(dir, 'turns.sqlite'));
    const bounds = { maxSessionsPerKey: 2, maxCharsPerKey: 1000 };
    const session = { id: 's1', ownerKey: 'k', resumeTokenHash: 'ab', system: 'Be brief.', ttlMs: 60_000 };
    expect(await store.createSession(session, bounds)).toBeUndefined();
    const turn = {
      sessionId: 's1',
      genId: 'g1',
      ownerKey: 'k',
      user: { role: 'user', content: 'Hi' } as const,
      transcriptTtlMs: 60_000,
    };
    expect(await store.beginTurn(turn)).toEqual({ ok: true });
    expect(await store.beginTurn({ ...turn, genId: 'g2' })).toEqual({ ok: false, reason: 'busy', activeGenId: 'g1' });
    store.appendChunks('g1', [
      { seq: 1, text: 'Hel', channel: 'content' },
      { seq: 2, text: 'lo', channel: 'content' },
    ]);
    await store.endTurn({
      sessionId: 's1',
      genId: 'g1',
      outcome: { ...outcome, finish: 'length' },
      turn: { user: turn.user, answer: 'Hello' },
    });
    expect(await store.loadSession('s1')).toMatchObject({
      messages: [
        { role: 'system', content: 'Be brief.' },
        { role: 'user', content: 'Hi' },
        { role: 'assistant', content: 'Hello', finish: 'length' },
      ],
      chars: 16,
      activeGenId: undefined,
    });
    expect(await store.loadGeneration('g1')).toMatchObject({
      chunks: [{ seq: 1 }, { seq: 2 }],
      outcome: { finish: 'length' },
    });
    expect(await store.ownerUsage('k')).toEqual({ sessions: 1, chars: 16 });
    await store.deleteSession('s1');
    expect(await store.ownerUsage('k')).toEqual({ sessions: 0, chars: 0 });
    await store.close();
  });

  it('keeps stored responses (the Responses API) until they expire', async () => {
    const store = SqliteStore.open(join(dir, 'responses.sqlite'));
    await store.saveResponse({ id: 'resp_1', ownerKey: 'k', body: '{"a":1}' }, 60_000);
    await store.saveResponse({ id: 'resp_2', ownerKey: 'k', body: '{}' }, 1);
    await new Promise((resolve) => setTimeout(resolve, 5));
    expect(await store.loadResponse('resp_1')).toEqual({ id: 'resp_1', ownerKey: 'k', body: '{"a":1}' });
    expect(await store.loadResponse('resp_2')).toBeUndefined();
    expect(await store.loadResponse('resp_3')).toBeUndefined();
    await store.close();
  });

  it('migrates an older file forward, keeping its data, in one transaction', () => {
    const path = join(dir, 'older.sqlite');
    const db = new Database(path);
    migrate(db, path, MIGRATIONS);
    db.prepare("INSERT INTO tickets (hash, key_name, expires_at) VALUES ('h', 'bot', 1)").run();
    const next = [...MIGRATIONS, 'ALTER TABLE tickets ADD COLUMN note TEXT'];
    migrate(db, path, next);
    expect(db.prepare('PRAGMA user_version').get()).toMatchObject({ user_version: next.length });
    expect(db.prepare('SELECT key_name, note FROM tickets').get()).toMatchObject({ key_name: 'bot', note: null });
    // A migration that fails leaves the file as it was.
    expect(() => migrate(db, path, [...next, 'ALTER TABLE nowhere ADD COLUMN x'])).toThrow(/nowhere/);
    expect(db.prepare('PRAGMA user_version').get()).toMatchObject({ user_version: next.length });
    db.close();
  });
});
