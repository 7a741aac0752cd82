import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chat, openSession } from '../helpers/conversation.js';
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
      { role: 'assistant', content: answerA.text },
    ]);
    expect(reopenedB.history).toEqual([
      { role: 'user', content: 'A bird sang.' },
      { role: 'assistant', content: answerB.text },
    ]);
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
    expect(reopened.history).toEqual([
      { role: 'user', content: 'Lily had a ball.' },
      { role: 'assistant', content: answer.text },
    ]);
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
