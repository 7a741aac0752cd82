import { describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { PROTOCOL_VERSION } from '../../protocol/index.js';
import { EchoEngine } from '../doubles/EchoEngine.js';
import { chat, collect, openSession, startChat } from '../helpers/conversation.js';
import { startTestServer } from '../helpers/startTestServer.js';
import { TestClient } from '../helpers/TestClient.js';

const KEY = 'sk-test-rate-limits-0123456789';
const auth = { headers: { authorization: `Bearer ${KEY}` } };
/** The echo double, answering as many tokens as asked, so that budgets are spent. */
const echo = () => ({ engine: new EchoEngine({ tokenDelayMs: 1, answerTokens: 400 }) });

describe('rate limits with token costs', () => {
  it('reports limit, remaining and reset per dimension after each generation', async () => {
    const harness = await startTestServer({ apiKeys: KEY, tokensPerMinute: 10_000, requestsPerMinute: 50 }, echo());
    const client = await TestClient.connect(harness.wsUrl, [PROTOCOL_VERSION], auth);
    const { sessionId } = await openSession(client);
    const answer = await chat(client, sessionId, 'Once upon a time', { maxTokens: 20 });
    const frame = await client.next('rate_limits');
    const byName = Object.fromEntries(frame.limits.map((state) => [state.name, state]));
    const used = answer.done.usage.promptTokens + answer.done.usage.completionTokens;
    expect(byName.tokens).toMatchObject({ limit: 10_000 });
    // Settled to what was used (plus at most the refill since): not the reservation.
    expect(byName.tokens?.remaining).toBeGreaterThanOrEqual(10_000 - used);
    expect(byName.tokens?.remaining).toBeLessThan(10_000);
    expect(byName.tokens?.resetMs).toBeGreaterThan(0);
    expect(byName.requests).toMatchObject({ limit: 50, remaining: 49 });
    expect(byName.concurrent).toMatchObject({ remaining: byName.concurrent?.limit });
    await client.close();
    await harness.stop();
  });

  it('refuses a request over the tokens per minute with rate_limited and retryAfterMs', async () => {
    const harness = await startTestServer({ apiKeys: KEY, tokensPerMinute: 300 }, echo());
    const client = await TestClient.connect(harness.wsUrl, [PROTOCOL_VERSION], auth);
    const { sessionId } = await openSession(client);
    // 200 tokens reserved, then settled to what it used (about 200).
    await chat(client, sessionId, 'Once upon a time', { maxTokens: 200, temperature: 0 });
    client.send({ type: 'chat.send', id: 'over', sessionId, content: 'More', params: { maxTokens: 200 } });
    const refused = await client.next('error', (f) => f.id === 'over');
    expect(refused).toMatchObject({ code: 'rate_limited', retryable: true });
    expect(refused.retryAfterMs).toBeGreaterThan(0);
    expect(refused.retryAfterMs).toBeLessThanOrEqual(60_000);
    await client.close();
    await harness.stop();
  });

  it('limits requests per minute, generations at once, sessions and connections per key', async () => {
    const harness = await startTestServer(
      {
        apiKeys: KEY,
        requestsPerMinute: 3,
        maxConcurrentPerKey: 1,
        maxSessionsPerKey: 3,
        maxConnectionsPerKey: 2,
      },
      echo(),
    );
    const client = await TestClient.connect(harness.wsUrl, [PROTOCOL_VERSION], auth);
    const sessions = [await openSession(client), await openSession(client), await openSession(client)];
    client.send({ type: 'session.open', id: 'fourth' });
    expect(await client.next('error', (f) => f.id === 'fourth')).toMatchObject({ code: 'rate_limited' });

    const running = await startChat(client, sessions[0]?.sessionId ?? '', 'Once upon a time', { maxTokens: 300 });
    client.send({ type: 'chat.send', id: 'second-at-once', sessionId: sessions[1]?.sessionId ?? '', content: 'Hi' });
    expect(await client.next('error', (f) => f.id === 'second-at-once')).toMatchObject({
      code: 'rate_limited',
      message: expect.stringContaining('at once'),
    });
    await collect(client, running);
    await chat(client, sessions[1]?.sessionId ?? '', 'Hi', { maxTokens: 2 });
    client.send({ type: 'chat.send', id: 'fourth-request', sessionId: sessions[2]?.sessionId ?? '', content: 'Hi' });
    // Two requests admitted so far (a refused one does not count): this third one is the last of the minute.
    const third = await client.next('generation.queued', (f) => f.id === 'fourth-request');
    await collect(client, third.genId);
    client.send({ type: 'chat.send', id: 'too-many', sessionId: sessions[2]?.sessionId ?? '', content: 'Hi' });
    expect(await client.next('error', (f) => f.id === 'too-many')).toMatchObject({
      code: 'rate_limited',
      message: expect.stringContaining('per minute'),
    });

    const second = await TestClient.connect(harness.wsUrl, [PROTOCOL_VERSION], auth);
    const status = await new Promise<number>((resolve, reject) => {
      const third = new WebSocket(harness.wsUrl, [PROTOCOL_VERSION], auth);
      third.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
      third.on('open', () => reject(new Error('a third connection should be refused')));
    });
    expect(status).toBe(429);
    await Promise.all([client.close(), second.close()]);
    await harness.stop();
  });
});
