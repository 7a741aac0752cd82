import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'libsql';
import { afterAll, describe, expect, it } from 'vitest';
import type { ChatMessage } from '../../server/engine/Engine.js';
import { toChatHistory } from '../../server/engine/toChatHistory.js';
import { promptMessagesOf } from '../../server/sessions/promptMessagesOf.js';
import { MemoryStore } from '../../server/store/MemoryStore.js';
import { SqliteStore } from '../../server/store/SqliteStore.js';
import type { Store, StoredOutcome } from '../../server/store/Store.js';
import { MIGRATIONS, migrate } from '../../server/store/sqliteSchema.js';
import { toolResultsMessage } from '../../server/store/turns.js';

const dir = mkdtempSync(join(tmpdir(), 'llm-chat-tools-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const outcome = (finish: StoredOutcome['finish']): StoredOutcome => ({
  finish,
  usage: { promptTokens: 3, completionTokens: 2, cachedPromptTokens: 0 },
  timings: { queuedMs: 0, ttftMs: 1, totalMs: 2 },
});
const bounds = { maxSessionsPerKey: 2, maxCharsPerKey: 10_000 };
const calls = [
  { id: 'call_a', name: 'get_weather', arguments: '{"city":"Paris"}' },
  { id: 'call_b', name: 'get_time', arguments: '{}' },
];

/** A turn that called two tools, then the turn of their results with its answer. */
async function playToolTurns(store: Store): Promise<void> {
  const session = { id: 's1', ownerKey: 'k', resumeTokenHash: 'ab', system: undefined, ttlMs: 60_000 };
  await store.createSession(session, bounds);
  const user = { role: 'user', content: 'Weather and time?' } as const;
  const base = { sessionId: 's1', ownerKey: 'k', transcriptTtlMs: 60_000 };
  await store.beginTurn({ ...base, genId: 'g1', user });
  // An answer of calls only: no text, and still a turn of the history.
  await store.endTurn({
    sessionId: 's1',
    genId: 'g1',
    outcome: outcome('tool_calls'),
    turn: { user, answer: '', toolCalls: calls },
  });
  const results = toolResultsMessage([
    { callId: 'call_a', content: 'Sunny' },
    { callId: 'call_b', content: '14:05' },
  ]);
  await store.beginTurn({ ...base, genId: 'g2', user: results });
  await store.endTurn({
    sessionId: 's1',
    genId: 'g2',
    outcome: outcome('stop'),
    turn: { user: results, answer: 'Sunny at 14:05.' },
  });
}

const expectedHistory = [
  { role: 'user', content: 'Weather and time?' },
  { role: 'assistant', content: '', finish: 'tool_calls', toolCalls: calls },
  {
    role: 'tool',
    content: 'Sunny14:05',
    toolResults: [
      { callId: 'call_a', chars: 5 },
      { callId: 'call_b', chars: 5 },
    ],
  },
  { role: 'assistant', content: 'Sunny at 14:05.' },
];

describe('tool calls and results in the stored history', () => {
  it('keeps them in SQLite (read back through its rows), results counted once in the characters', async () => {
    // Read back from the same store: SqliteStore in one process cannot reopen a file it closed (its
    // exclusive lock outlives close()); the durability test restarts a process for that.
    const store = SqliteStore.open(join(dir, 'tools.sqlite'));
    await playToolTurns(store);
    const session = await store.loadSession('s1');
    expect(session?.messages).toEqual(expectedHistory);
    expect(session?.chars).toBe('Weather and time?'.length + 'Sunny14:05'.length + 'Sunny at 14:05.'.length);
    await store.close();
  });

  it('keeps them in memory the same way', async () => {
    const store = new MemoryStore({ maxSessions: 10 });
    await playToolTurns(store);
    expect((await store.loadSession('s1'))?.messages).toEqual(expectedHistory);
    await store.close();
  });

  it('reads a history stored before tools (no tools_json column) after migrating it', async () => {
    const path = join(dir, 'old.sqlite');
    const db = new Database(path);
    migrate(db, path, MIGRATIONS.slice(0, 2));
    db.prepare("INSERT INTO sessions VALUES ('s0', 'k', 'ab', 5, NULL, 60000, ?)").run(Date.now() + 60_000);
    db.prepare("INSERT INTO messages VALUES ('s0', 0, 'user', 'Hi', NULL)").run();
    db.prepare("INSERT INTO messages VALUES ('s0', 1, 'assistant', 'Hello', 'length')").run();
    db.close();
    const store = SqliteStore.open(path);
    expect((await store.loadSession('s0'))?.messages).toEqual([
      { role: 'user', content: 'Hi' },
      { role: 'assistant', content: 'Hello', finish: 'length' },
    ]);
    await store.close();
  });

  it('gives the engine one tool message per result, the same objects every turn', () => {
    const results = toolResultsMessage([
      { callId: 'call_a', content: 'Sunny' },
      { callId: 'call_b', content: '' },
    ]);
    const first = promptMessagesOf([results]);
    expect(first).toEqual([
      { role: 'tool', content: 'Sunny', toolCallId: 'call_a' },
      { role: 'tool', content: '', toolCallId: 'call_b' },
    ]);
    expect(promptMessagesOf([results])[0]).toBe(first[0]);
  });
});

describe('tool calls in the chat history node-llama-cpp renders', () => {
  it('gives each call the result that follows it, when a client reuses ids from turn to turn', () => {
    const turn = (city: string, weather: string): ChatMessage[] => [
      { role: 'user', content: `Weather in ${city}?` },
      {
        role: 'assistant',
        content: '',
        toolCalls: [{ id: 'call_0', name: 'get_weather', arguments: JSON.stringify({ city }) }],
      },
      { role: 'tool', content: weather, toolCallId: 'call_0' },
      { role: 'assistant', content: weather },
    ];
    const history = toChatHistory([...turn('Paris', 'sunny'), ...turn('Oslo', 'snow')]);
    const calls = history.flatMap((item) =>
      item.type === 'model'
        ? item.response.flatMap((part) => (typeof part === 'object' && part.type === 'functionCall' ? [part] : []))
        : [],
    );
    expect(calls.map((call) => [call.params, call.result])).toEqual([
      [{ city: 'Paris' }, 'sunny'],
      [{ city: 'Oslo' }, 'snow'],
    ]);
  });
});
