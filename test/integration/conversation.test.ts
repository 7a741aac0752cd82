import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chat, historyEntryOf, openSession } from '../helpers/conversation.js';
import { startTestServer } from '../helpers/startTestServer.js';
import { TestClient } from '../helpers/TestClient.js';

describe('sessions and turns', () => {
  let harness: Awaited<ReturnType<typeof startTestServer>>;
  beforeAll(async () => {
    harness = await startTestServer();
  });
  afterAll(() => harness.stop());

  it('shows the second turn of a session the first one', async () => {
    const client = await TestClient.connect(harness.wsUrl);
    const { sessionId } = await openSession(client, 'You tell short stories.');
    const first = await chat(client, sessionId, 'Tell me about a cat.', { maxTokens: 20, temperature: 0 });
    const second = await chat(client, sessionId, 'And then?', { maxTokens: 20, temperature: 0 });

    // The second prompt holds the system prompt, both user turns and the first answer.
    expect(second.done.usage.promptTokens).toBeGreaterThan(
      first.done.usage.promptTokens + first.done.usage.completionTokens,
    );
    // A fresh session asked the same second question has a far shorter prompt.
    const { sessionId: fresh } = await openSession(client, 'You tell short stories.');
    const alone = await chat(client, fresh, 'And then?', { maxTokens: 5, temperature: 0 });
    expect(alone.done.usage.promptTokens).toBeLessThan(second.done.usage.promptTokens);
    await client.close();
  });

  it('holds two sessions on one connection, each with its own history', async () => {
    const client = await TestClient.connect(harness.wsUrl);
    const a = await openSession(client, 'System A');
    const b = await openSession(client);
    expect(a.sessionId).not.toBe(b.sessionId);
    const [answerA, answerB] = await Promise.all([
      chat(client, a.sessionId, 'A dog ran.', { maxTokens: 10 }),
      chat(client, b.sessionId, 'A bird sang.', { maxTokens: 10 }),
    ]);
    expect(answerA.genId).not.toBe(answerB.genId);

    const reopenedA = await reattach(client, a.sessionId, a.resumeToken);
    const reopenedB = await reattach(client, b.sessionId, b.resumeToken);
    expect(reopenedA.history).toEqual([
      { role: 'system', content: 'System A' },
      { role: 'user', content: 'A dog ran.' },
      historyEntryOf(answerA),
    ]);
    expect(reopenedB.history).toEqual([{ role: 'user', content: 'A bird sang.' }, historyEntryOf(answerB)]);
    await client.close();
  });

  it('reattaches a session from a second connection with its resume token and goes on with it', async () => {
    const first = await TestClient.connect(harness.wsUrl);
    const opened = await openSession(first);
    const answer = await chat(first, opened.sessionId, 'Lily had a ball.', { maxTokens: 15 });
    await first.close();

    const second = await TestClient.connect(harness.wsUrl);
    const reopened = await reattach(second, opened.sessionId, opened.resumeToken);
    expect(reopened).toMatchObject({ sessionId: opened.sessionId, resumed: true });
    expect(reopened.history).toEqual([{ role: 'user', content: 'Lily had a ball.' }, historyEntryOf(answer)]);
    const next = await chat(second, opened.sessionId, 'What next?', { maxTokens: 10 });
    expect(next.done.usage.promptTokens).toBeGreaterThan(answer.done.usage.promptTokens);
    await second.close();
  });

  it('refuses a reattach with a wrong resume token as not_found', async () => {
    const client = await TestClient.connect(harness.wsUrl);
    const opened = await openSession(client);
    client.send({ type: 'session.open', id: 'bad-token', sessionId: opened.sessionId, resumeToken: 'x'.repeat(32) });
    const error = await client.next('error', (f) => f.id === 'bad-token');
    expect(error).toMatchObject({ code: 'not_found', retryable: false });
    await client.close();
  });

  it('answers session_busy to a second message while the first is generating', async () => {
    const client = await TestClient.connect(harness.wsUrl);
    const { sessionId } = await openSession(client);
    client.send({ type: 'chat.send', id: 'one', sessionId, content: 'Once upon a time', params: { maxTokens: 200 } });
    client.send({ type: 'chat.send', id: 'two', sessionId, content: 'Again' });
    const busy = await client.next('error', (f) => f.id === 'two');
    const queued = await client.next('generation.queued', (f) => f.id === 'one');
    expect(busy).toMatchObject({ code: 'session_busy', retryable: true, genId: queued.genId });
    await client.next('generation.done', (f) => f.genId === queued.genId);
    await client.close();
  });
});

describe('sessions per connection', () => {
  it('refuses a session past maxSessionsPerConnection, and frees the place on session.close', async () => {
    const harness = await startTestServer({ maxSessionsPerConnection: 2 });
    const client = await TestClient.connect(harness.wsUrl);
    const first = await openSession(client);
    await openSession(client);
    client.send({ type: 'session.open', id: 'third' });
    expect(await client.next('error', (f) => f.id === 'third')).toMatchObject({ code: 'forbidden' });
    client.send({ type: 'session.close', id: 'close', sessionId: first.sessionId });
    expect(await client.next('session.closed', (f) => f.id === 'close')).toMatchObject({ sessionId: first.sessionId });
    client.send({ type: 'chat.send', id: 'closed-one', sessionId: first.sessionId, content: 'hi' });
    expect(await client.next('error', (f) => f.id === 'closed-one')).toMatchObject({ code: 'not_found' });
    await openSession(client);
    await client.close();
    await harness.stop();
  });
});

async function reattach(client: TestClient, sessionId: string, resumeToken: string) {
  const id = `reattach-${sessionId}-${Math.random()}`;
  client.send({ type: 'session.open', id, sessionId, resumeToken });
  return client.next('session.opened', (f) => f.id === id);
}

describe('sessions and history per key', () => {
  const KEY_A = 'sk-a-0123456789abcdef';
  const KEY_B = 'sk-b-0123456789abcdef';
  const connect = (url: string, key: string) =>
    TestClient.connect(url, undefined, { headers: { authorization: `Bearer ${key}` } });

  it("keeps a key's sessions however many another key opens and closes, refusing that key past its own bound", async () => {
    // By default a key may keep a tenth of the server's sessions.
    const harness = await startTestServer({ apiKeys: `${KEY_A},${KEY_B}`, maxSessions: 100 });
    const a = await connect(harness.wsUrl, KEY_A);
    const kept = await openSession(a, 'Remember me');
    const b = await connect(harness.wsUrl, KEY_B);
    for (let i = 0; i < 60; i++) {
      const id = `b-open-${i}`;
      b.send({ type: 'session.open', id, system: 'x'.repeat(100) });
      if (i >= 10) {
        // Closed sessions stay reattachable, so they keep their place until they expire.
        expect(await b.next('error', (f) => f.id === id)).toMatchObject({
          code: 'rate_limited',
          retryAfterMs: 1_800_000,
        });
        continue;
      }
      const { sessionId } = await b.next('session.opened', (f) => f.id === id);
      b.send({ type: 'session.close', id: `b-close-${i}`, sessionId });
      await b.next('session.closed', (f) => f.id === `b-close-${i}`);
    }
    const again = await connect(harness.wsUrl, KEY_A);
    expect(await reattach(again, kept.sessionId, kept.resumeToken)).toMatchObject({ resumed: true });
    await Promise.all([a.close(), b.close(), again.close()]);
    await harness.stop();
  });

  it('gives a session place back to the key on session.close with forget, after which the session is gone', async () => {
    const harness = await startTestServer({ apiKeys: KEY_A, maxSessionsPerKey: 1 });
    const client = await connect(harness.wsUrl, KEY_A);
    const first = await openSession(client);
    client.send({ type: 'session.open', id: 'second' });
    expect(await client.next('error', (f) => f.id === 'second')).toMatchObject({ code: 'rate_limited' });
    client.send({ type: 'session.close', id: 'forget', sessionId: first.sessionId, forget: true });
    await client.next('session.closed', (f) => f.id === 'forget');
    client.send({ type: 'session.open', id: 'gone', sessionId: first.sessionId, resumeToken: first.resumeToken });
    expect(await client.next('error', (f) => f.id === 'gone')).toMatchObject({ code: 'not_found' });
    await openSession(client);
    await client.close();
    await harness.stop();
  });

  it('answers session_full once a session holds --max-session-chars, and rate_limited past the key total', async () => {
    const harness = await startTestServer({
      apiKeys: KEY_A,
      maxMessageChars: 1000,
      maxSessionChars: 1500,
      maxHistoryCharsPerKey: 3000,
    });
    const client = await connect(harness.wsUrl, KEY_A);
    const { sessionId } = await openSession(client, 's'.repeat(900));
    client.send({ type: 'chat.send', id: 'too-much', sessionId, content: 'u'.repeat(700) });
    const full = await client.next('error', (f) => f.id === 'too-much');
    expect(full).toMatchObject({ code: 'session_full', retryable: false });
    expect(full.message).toMatch(/900 of its 1500 characters.*open a new session/);
    await openSession(client, 's'.repeat(1000));
    await openSession(client, 's'.repeat(1000));
    client.send({ type: 'session.open', id: 'over-key', system: 's'.repeat(200) });
    const overKey = await client.next('error', (f) => f.id === 'over-key');
    expect(overKey).toMatchObject({ code: 'rate_limited' });
    expect(overKey.message).toMatch(/2900 of its 3000 characters/);
    await client.close();
    await harness.stop();
  });
});
