import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { CloseCodes } from '../../protocol/index.js';
import { EchoEngine } from '../doubles/EchoEngine.js';
import { chat, openSession } from '../helpers/conversation.js';
import { startTestServer } from '../helpers/startTestServer.js';
import { TestClient } from '../helpers/TestClient.js';

describe('bad input', () => {
  let harness: Awaited<ReturnType<typeof startTestServer>>;
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown) => unhandled.push(reason);
  beforeAll(async () => {
    process.on('unhandledRejection', onUnhandled);
    harness = await startTestServer(
      { maxFrameBytes: 4096, maxBadFrames: 5, maxMessageChars: 500 },
      { engine: new EchoEngine() },
    );
  });
  afterAll(async () => {
    await harness.stop();
    process.off('unhandledRejection', onUnhandled);
    expect(unhandled).toEqual([]);
  });

  /** The connection still answers after a bad frame. */
  async function expectAlive(client: TestClient) {
    const id = `ping-${Math.random()}`;
    client.send({ type: 'ping', id });
    await client.next('pong', (f) => f.id === id);
  }

  it('answers invalid JSON with bad_json and keeps the connection', async () => {
    const client = await TestClient.connect(harness.wsUrl);
    client.sendRaw('{"type": "ping", ');
    expect(await client.next('error')).toMatchObject({ code: 'bad_json', retryable: false });
    await expectAlive(client);
    await client.close();
  });

  it('answers a binary frame with bad_frame', async () => {
    const client = await TestClient.connect(harness.wsUrl);
    client.sendRaw(Buffer.from([1, 2, 3]), true);
    const error = await client.next('error');
    expect(error.code).toBe('bad_frame');
    expect(error.message).toMatch(/binary/i);
    await expectAlive(client);
    await client.close();
  });

  it('answers an unknown type with unknown_type, echoing the id', async () => {
    const client = await TestClient.connect(harness.wsUrl);
    client.sendRaw(JSON.stringify({ type: 'chat.teleport', id: 'x1' }));
    expect(await client.next('error')).toMatchObject({ code: 'unknown_type', id: 'x1' });
    await expectAlive(client);
    await client.close();
  });

  it('answers schema violations with bad_frame naming the field', async () => {
    const client = await TestClient.connect(harness.wsUrl);
    const { sessionId } = await openSession(client);
    const invalid = [
      { type: 'chat.send', id: 'v1', sessionId, content: 42 },
      { type: 'chat.send', id: 'v2', sessionId, content: 'hi', params: { temperature: 9 } },
      { type: 'chat.send', id: 'v3', sessionId, content: 'hi', params: { temprature: 1 } },
      { type: 'chat.send', id: 'v4', sessionId, content: 'hi', params: { maxTokens: 1_000_000 } },
      { type: 'ping' },
    ];
    for (const frame of invalid) client.sendRaw(JSON.stringify(frame));
    expect(await client.next('error', (f) => f.id === 'v1')).toMatchObject({
      code: 'bad_frame',
      message: expect.stringContaining('content'),
    });
    expect(await client.next('error', (f) => f.id === 'v2')).toMatchObject({
      code: 'bad_frame',
      message: expect.stringContaining('params.temperature'),
    });
    expect(await client.next('error', (f) => f.id === 'v3')).toMatchObject({
      code: 'bad_frame',
      message: expect.stringContaining('temprature'),
    });
    expect(await client.next('error', (f) => f.id === 'v4')).toMatchObject({
      code: 'bad_frame',
      message: expect.stringContaining('maxTokens'),
    });
    expect(await client.next('error', (f) => f.id === undefined)).toMatchObject({
      code: 'bad_frame',
      message: expect.stringContaining('id'),
    });
    await expectAlive(client);
    await client.close();
  });

  it('answers an unknown session with not_found', async () => {
    const client = await TestClient.connect(harness.wsUrl);
    client.send({ type: 'chat.send', id: 'nosession', sessionId: 's_unknown', content: 'hello' });
    expect(await client.next('error', (f) => f.id === 'nosession')).toMatchObject({ code: 'not_found' });
    client.send({ type: 'generation.resume', id: 'nogen', genId: 'g_unknown', afterSeq: 0 });
    expect(await client.next('error', (f) => f.id === 'nogen')).toMatchObject({ code: 'not_found' });
    await expectAlive(client);
    await client.close();
  });

  it('answers a message longer than maxMessageChars with payload_too_large', async () => {
    const client = await TestClient.connect(harness.wsUrl);
    const { sessionId } = await openSession(client);
    client.send({ type: 'chat.send', id: 'long', sessionId, content: 'a'.repeat(501) });
    expect(await client.next('error', (f) => f.id === 'long')).toMatchObject({ code: 'payload_too_large' });
    await expectAlive(client);
    await client.close();
  });

  it('closes a connection that sends a frame larger than maxFrameBytes with 1009', async () => {
    const client = await TestClient.connect(harness.wsUrl);
    client.sendRaw(JSON.stringify({ type: 'ping', id: 'big', pad: 'x'.repeat(8000) }));
    const closed = await client.closed;
    expect(closed.code).toBe(CloseCodes.MessageTooBig.code);
  });

  it('closes a connection that floods bad frames with 1008', async () => {
    const client = await TestClient.connect(harness.wsUrl);
    for (let i = 0; i < 10; i++) client.sendRaw('not json');
    const closed = await client.closed;
    expect(closed).toEqual({ code: CloseCodes.PolicyViolation.code, reason: CloseCodes.PolicyViolation.reason });
  });

  it('refuses a client that offers no supported subprotocol with HTTP 426 and a JSON body', async () => {
    for (const protocols of [[], ['llm-chat.v0']]) {
      const socket = new WebSocket(harness.wsUrl, protocols);
      const response = await new Promise<{ status: number; body: string }>((resolve, reject) => {
        socket.on('unexpected-response', (_req, res) => {
          let body = '';
          res.on('data', (chunk: Buffer) => (body += chunk.toString()));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        });
        socket.on('open', () => reject(new Error('upgrade should be refused')));
      });
      expect(response.status).toBe(426);
      expect(JSON.parse(response.body)).toMatchObject({
        error: { code: 'unsupported_version', message: expect.stringContaining('llm-chat.v1') },
      });
    }
  });

  it('keeps serving a well-behaved client while others misbehave', async () => {
    const good = await TestClient.connect(harness.wsUrl);
    const bad = await TestClient.connect(harness.wsUrl);
    const { sessionId } = await openSession(good);
    const answering = chat(good, sessionId, 'Once upon a time', { maxTokens: 50 });
    for (let i = 0; i < 4; i++) bad.sendRaw('{{{');
    bad.sendRaw(Buffer.alloc(10), true);
    const answer = await answering;
    expect(['stop', 'length']).toContain(answer.done.finish);
    expect(answer.tokens.length).toBeGreaterThan(0);
    await good.close();
    bad.socket.terminate();
  });
});

describe('bad HTTP bodies', () => {
  it('refuses a body of many tiny items before validating it, and counts every request on arrival', async () => {
    const harness = await startTestServer({ requestsPerMinute: 4 }, { engine: new EchoEngine() });
    const post = (body: string) =>
      fetch(`${harness.httpUrl}/v1/chat/completions`, {
        method: 'POST',
        body,
        headers: { 'content-type': 'application/json' },
      });
    const emptyParts = Array.from({ length: 5000 }, () => ({ type: 'text', text: '' }));
    const manyParts = await post(JSON.stringify({ messages: [{ role: 'user', content: emptyParts }], max_tokens: 1 }));
    expect(manyParts.status).toBe(413);
    expect(await manyParts.json()).toMatchObject({
      error: { code: 'payload_too_large', message: /256 content parts/ },
    });
    const manyMessages = Array.from({ length: 1001 }, () => ({ role: 'user', content: '' }));
    expect((await post(JSON.stringify({ messages: manyMessages }))).status).toBe(413);
    expect((await post('{oops')).status).toBe(400);
    const tooBig = await post(JSON.stringify({ messages: [{ role: 'user', content: 'x'.repeat(300_000) }] }));
    expect(tooBig.status).toBe(413);
    // Four requests this minute, valid or not: the fifth is refused before its body is read.
    const fifth = await post(JSON.stringify({ messages: [{ role: 'user', content: 'Hi' }], max_tokens: 1 }));
    expect(fifth.status).toBe(429);
    expect(await fifth.json()).toMatchObject({ error: { code: 'rate_limited', message: /4 requests per minute/ } });
    expect(Number(fifth.headers.get('retry-after'))).toBeGreaterThan(0);
    await harness.stop();
  });
});
