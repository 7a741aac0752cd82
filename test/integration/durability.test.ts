import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'libsql';
import { afterAll, describe, expect, it } from 'vitest';
import type { Token } from '../../protocol/index.js';
import { APPLICATION_ID } from '../../server/store/sqliteSchema.js';
import { type SpawnedServer, spawnServer } from '../../tooling/serverProcess.js';
import { chat, historyEntryOf, openSession, startChat } from '../helpers/conversation.js';
import { TestClient } from '../helpers/TestClient.js';

const dir = mkdtempSync(join(tmpdir(), 'llm-chat-store-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The server as a process on an SQLite file, ready. */
async function serveOn(file: string): Promise<{ spawned: SpawnedServer; wsUrl: string }> {
  const spawned = spawnServer([], { STORE: `sqlite:${file}` });
  const port = await spawned.port();
  await spawned.ready();
  return { spawned, wsUrl: `ws://127.0.0.1:${port}/v1/ws` };
}

const tokensOf = (client: TestClient, genId: string) =>
  client.frames.filter((f): f is Token => f.type === 'token' && f.genId === genId);

describe('restart loses nothing acknowledged (SQLite)', () => {
  it('after SIGKILL mid answer, reattaches with every finished turn and reports the running one as interrupted with its partial text', async () => {
    const file = join(dir, 'killed.sqlite');
    const first = await serveOn(file);
    const client = await TestClient.connect(first.wsUrl);
    const opened = await openSession(client, 'You tell stories.');
    const finished = await chat(client, opened.sessionId, 'A cat sat.', { maxTokens: 12, temperature: 0 });
    const genId = await startChat(client, opened.sessionId, 'Once upon a time', { maxTokens: 2000, temperature: 0 });
    await client.next('token', (f) => f.genId === genId && f.seq >= 20);
    first.spawned.child.kill('SIGKILL');
    await first.spawned.exited;
    const seen = tokensOf(client, genId);
    const lastSeq = seen.at(-1)?.seq ?? 0;
    const seenText = seen.map((t) => t.text).join('');
    await client.close().catch(() => undefined);

    const second = await serveOn(file);
    const back = await TestClient.connect(second.wsUrl);
    back.send({ type: 'session.open', id: 'back', sessionId: opened.sessionId, resumeToken: opened.resumeToken });
    const reopened = await back.next('session.opened', (f) => f.id === 'back');
    const partial = reopened.history[4];
    expect(reopened.history.slice(0, 4)).toEqual([
      { role: 'system', content: 'You tell stories.' },
      { role: 'user', content: 'A cat sat.' },
      historyEntryOf(finished),
      { role: 'user', content: 'Once upon a time' },
    ]);
    // Every token the client saw was stored before it was sent.
    expect(partial).toMatchObject({ role: 'assistant', finish: 'interrupted' });
    expect(partial?.content.startsWith(seenText)).toBe(true);

    // A resume after the last seq held gets the rest of what was stored, then the end.
    back.send({ type: 'generation.resume', id: 'rest', genId, afterSeq: lastSeq });
    const done = await back.next('generation.done', (f) => f.genId === genId);
    expect(done.finish).toBe('interrupted');
    const rest = tokensOf(back, genId);
    expect(rest.every((t) => t.seq > lastSeq)).toBe(true);
    expect(seenText + rest.map((t) => t.text).join('')).toBe(partial?.content);
    expect(done.usage.completionTokens).toBe(rest.at(-1)?.seq ?? lastSeq);

    // The session goes on.
    const next = await chat(back, opened.sessionId, 'And then?', { maxTokens: 5 });
    expect(next.done.usage.promptTokens).toBeGreaterThan(finished.done.usage.promptTokens);
    await back.close();
    second.spawned.child.kill('SIGTERM');
    expect((await second.spawned.exited).code).toBe(0);
  });

  it('after SIGTERM, the drained answer is in the history as it ended, not interrupted', async () => {
    const file = join(dir, 'stopped.sqlite');
    const first = await serveOn(file);
    const client = await TestClient.connect(first.wsUrl);
    const opened = await openSession(client);
    const genId = await startChat(client, opened.sessionId, 'Once upon a time', { maxTokens: 60, temperature: 0 });
    await client.next('token', (f) => f.genId === genId);
    first.spawned.child.kill('SIGTERM');
    const done = await client.next('generation.done', (f) => f.genId === genId);
    expect((await first.spawned.exited).code).toBe(0);

    const second = await serveOn(file);
    const back = await TestClient.connect(second.wsUrl);
    back.send({ type: 'session.open', id: 'back', sessionId: opened.sessionId, resumeToken: opened.resumeToken });
    const reopened = await back.next('session.opened', (f) => f.id === 'back');
    const text = tokensOf(client, genId)
      .map((t) => t.text)
      .join('');
    expect(reopened.history).toEqual([
      { role: 'user', content: 'Once upon a time' },
      historyEntryOf({ genId, text, tokens: [], done }),
    ]);
    await Promise.all([client.close().catch(() => undefined), back.close()]);
    second.spawned.child.kill('SIGTERM');
    await second.spawned.exited;
  });
});

describe('a store that cannot be used is a clear error', () => {
  /** Starts the server on a store setting and expects it to exit 1 within seconds, saying `why`. */
  async function refusesToStart(store: string, why: RegExp): Promise<void> {
    const started = performance.now();
    const spawned = spawnServer([], { STORE: store });
    const { code } = await spawned.exited;
    expect(code).toBe(1);
    expect(performance.now() - started).toBeLessThan(10_000);
    expect(spawned.output.join('\n')).toMatch(why);
  }

  it('refuses a file that is not an SQLite database, naming it', async () => {
    const file = join(dir, 'corrupt.sqlite');
    writeFileSync(file, 'not a database '.repeat(400));
    await refusesToStart(`sqlite:${file}`, /corrupt\.sqlite: it is not a valid SQLite database/);
  });

  it("refuses another program's SQLite database and one written by a newer version", async () => {
    const foreign = join(dir, 'foreign.sqlite');
    const db = new Database(foreign);
    db.exec('CREATE TABLE notes (body TEXT)');
    db.close();
    await refusesToStart(`sqlite:${foreign}`, /an SQLite database of another program/);

    const newer = join(dir, 'newer.sqlite');
    // Ours (its application id), at a schema version this server does not know.
    const bumped = new Database(newer);
    bumped.exec(`CREATE TABLE later (x); PRAGMA application_id = ${APPLICATION_ID}; PRAGMA user_version = 99`);
    bumped.close();
    await refusesToStart(`sqlite:${newer}`, /written by a newer version of this server \(schema 99/);
  });

  it('refuses a file another server holds', async () => {
    const file = join(dir, 'held.sqlite');
    const holder = await serveOn(file);
    await refusesToStart(`sqlite:${file}`, /another process holds it/);
    holder.spawned.child.kill('SIGTERM');
    await holder.spawned.exited;
  });

  it('exits 1 within seconds naming the URL when Redis cannot be reached', async () => {
    await refusesToStart('redis://:secret@127.0.0.1:1/0', /redis at redis:\/\/127\.0\.0\.1:1\/0 unreachable/);
  });
});
