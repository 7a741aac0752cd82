import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RedisServer, startRedis } from '../../tooling/redisServer.js';
import { EchoEngine } from '../doubles/EchoEngine.js';
import { chat, nextId, openSession, startChat } from '../helpers/conversation.js';
import { startTestServer } from '../helpers/startTestServer.js';
import { TestClient } from '../helpers/TestClient.js';

/** Polls /readyz until it answers `status`; returns its body. */
async function readyzUntil(httpUrl: string, status: number): Promise<Record<string, unknown>> {
  const deadline = performance.now() + 10_000;
  for (;;) {
    const response = await fetch(`${httpUrl}/readyz`);
    const body = (await response.json()) as Record<string, unknown>;
    if (response.status === status) return body;
    if (performance.now() > deadline) throw new Error(`/readyz still ${response.status}: ${JSON.stringify(body)}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

describe('Redis lost while running', () => {
  let redis: RedisServer;
  let harness: Awaited<ReturnType<typeof startTestServer>>;
  beforeAll(async () => {
    redis = await startRedis();
    // The echo engine double: this is about the store, not the model.
    harness = await startTestServer({ store: redis.url }, { engine: new EchoEngine() });
  });
  afterAll(async () => {
    await harness?.stop();
    await redis?.stop();
  });

  it('says so on /readyz, refuses requests with retryable store_unavailable, and recovers without a restart', async () => {
    const client = await TestClient.connect(harness.wsUrl);
    const before = await openSession(client);
    expect((await chat(client, before.sessionId, 'one two three')).text).toBe('one two three');

    await redis.pause();
    const down = await readyzUntil(harness.httpUrl, 503);
    expect(down).toMatchObject({ status: 'store_unavailable', reason: expect.stringContaining('redis') });

    const id = nextId('chat');
    client.send({ type: 'chat.send', id, sessionId: before.sessionId, content: 'four' });
    const refused = await client.next('error', (f) => f.id === id);
    expect(refused).toMatchObject({ code: 'store_unavailable', retryable: true });
    expect(refused.retryAfterMs).toBeGreaterThan(0);
    const open = nextId('open');
    client.send({ type: 'session.open', id: open });
    expect(await client.next('error', (f) => f.id === open)).toMatchObject({ code: 'store_unavailable' });
    const api = await fetch(`${harness.httpUrl}/v1/chat/completions`, {
      method: 'POST',
      body: JSON.stringify({ messages: [{ role: 'user', content: 'hi' }] }),
    });
    expect(api.status).toBe(503);
    expect(await api.json()).toMatchObject({ error: { code: 'store_unavailable', type: 'service_unavailable' } });

    // A new, empty Redis on the same address: the server reconnects on its own.
    await redis.resume();
    expect(await readyzUntil(harness.httpUrl, 200)).toMatchObject({ status: 'ready' });
    const after = await openSession(client);
    expect((await chat(client, after.sessionId, 'five six')).text).toBe('five six');
    await client.close();
  });
});

describe('two instances on one Redis (in process, on the echo engine double)', () => {
  let redis: RedisServer;
  let first: Awaited<ReturnType<typeof startTestServer>>;
  let second: Awaited<ReturnType<typeof startTestServer>>;
  beforeAll(async () => {
    redis = await startRedis();
    const engine = () => new EchoEngine({ tokenDelayMs: 5, answerTokens: 2000 });
    first = await startTestServer({ store: redis.url }, { engine: engine() });
    second = await startTestServer({ store: redis.url }, { engine: engine() });
  });
  afterAll(async () => {
    await first?.stop();
    await second?.stop();
    await redis?.stop();
  });

  it('follows, from one instance, a generation running on the other, and stops it there', async () => {
    const owner = await TestClient.connect(first.wsUrl);
    const opened = await openSession(owner);
    const genId = await startChat(owner, opened.sessionId, 'tick tock ', { maxTokens: 2000 });
    await owner.next('token', (f) => f.genId === genId && f.seq >= 5);

    const elsewhere = await TestClient.connect(second.wsUrl);
    elsewhere.send({ type: 'session.open', id: 'there', sessionId: opened.sessionId, resumeToken: opened.resumeToken });
    await elsewhere.next('session.opened', (f) => f.id === 'there');
    elsewhere.send({ type: 'generation.resume', id: 'follow', genId, afterSeq: 0 });
    await elsewhere.next('token', (f) => f.genId === genId && f.seq >= 20);
    // The session is busy on every instance while it runs.
    elsewhere.send({ type: 'chat.send', id: 'busy', sessionId: opened.sessionId, content: 'hi' });
    expect(await elsewhere.next('error', (f) => f.id === 'busy')).toMatchObject({ code: 'session_busy', genId });

    elsewhere.send({ type: 'generation.cancel', id: 'stop', genId });
    const ack = await elsewhere.next('cancel.ack', (f) => f.id === 'stop');
    expect(ack.status).toBe('cancelled');
    const ownerDone = await owner.next('generation.done', (f) => f.genId === genId);
    expect(ownerDone.finish).toBe('cancelled');
    expect(ack.completionTokens).toBe(ownerDone.usage.completionTokens);
    const followed = await elsewhere.next('generation.done', (f) => f.genId === genId);
    expect(followed.finish).toBe('cancelled');
    // What the follower got is exactly what the owner got, each seq once.
    const seqs = (client: TestClient) =>
      client.frames.flatMap((f) => (f.type === 'token' && f.genId === genId ? [f.seq] : []));
    expect(new Set(seqs(elsewhere)).size).toBe(seqs(elsewhere).length);
    expect(seqs(elsewhere).at(-1)).toBe(ownerDone.usage.completionTokens);
    await Promise.all([owner.close(), elsewhere.close()]);
  });
});
