import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RedisServer, startRedis } from '../../tooling/redisServer.js';
import { EchoEngine } from '../doubles/EchoEngine.js';
import { chat, nextId, openSession } from '../helpers/conversation.js';
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
