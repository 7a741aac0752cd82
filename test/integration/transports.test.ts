import { connect as connectTcp } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { CloseCodes, PROTOCOL_VERSION } from '../../protocol/index.js';
import { chat, collect, openSession, startChat } from '../helpers/conversation.js';
import { startTestServer } from '../helpers/startTestServer.js';
import { TestClient } from '../helpers/TestClient.js';

const KEY = 'sk-test-transports-0123456789';
const auth = { headers: { authorization: `Bearer ${KEY}` } };

describe.each(['uws', 'ws'] as const)('the %s transport', (transport) => {
  let harness: Awaited<ReturnType<typeof startTestServer>>;
  beforeAll(async () => {
    harness = await startTestServer({
      transport,
      apiKeys: KEY,
      maxFrameBytes: 4096,
      maxBadFrames: 3,
      resumeGraceMs: 0,
      maxConcurrent: 1,
    });
  });
  afterAll(() => harness.stop());
  const connect = () => TestClient.connect(harness.wsUrl, [PROTOCOL_VERSION], auth);

  it('cuts off a client that trickles its headers or its body, within seconds', { timeout: 20_000 }, async () => {
    const open = await startTestServer({ transport });
    const started = performance.now();
    const trickled = [
      ['GET /v1/ws HTTP/1.1\r\n', 'Host: 127.0.0.1\r\n', 'Upgrade: websocket\r\n'],
      ['POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\ncontent-length: 1000\r\n\r\n', '{"mess', 'ages":'],
    ].map((pieces) => trickle(open.port, pieces));
    const ended = await Promise.all(trickled);
    await open.stop();
    expect(ended.map((end) => end.closed)).toEqual([true, true]);
    // Ours answers 408 request_timeout; uWebSockets.js's own 10 s limit may close the socket first, silently.
    if (transport === 'ws' || ended[1]?.received !== '') {
      expect(ended[1]?.received).toMatch(/^HTTP\/1\.1 408[\s\S]*"code":"request_timeout"/);
    }
    expect(performance.now() - started).toBeLessThan(15_000);
  });

  it('holds a conversation with numbered tokens', async () => {
    const client = await connect();
    const { sessionId } = await openSession(client);
    const answer = await chat(client, sessionId, 'Once upon a time', { maxTokens: 20, temperature: 0 });
    expect(answer.tokens.at(-1)?.seq).toBe(answer.done.usage.completionTokens);
    await client.close();
  });

  it('refuses an upgrade without the subprotocol (426) or without a key (401), with JSON bodies', async () => {
    for (const [protocols, options, status] of [
      [[], auth, 426],
      [[PROTOCOL_VERSION], {}, 401],
    ] as const) {
      const refused = await new Promise<{ status: number; body: string }>((resolve, reject) => {
        const socket = new WebSocket(harness.wsUrl, [...protocols], options);
        socket.on('unexpected-response', (_req, res) => {
          let body = '';
          res.on('data', (chunk: Buffer) => (body += chunk.toString()));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        });
        socket.on('open', () => reject(new Error('should be refused')));
      });
      expect(refused.status).toBe(status);
      expect(JSON.parse(refused.body)).toHaveProperty('error.code');
    }
  });

  it('answers bad frames and closes an oversize frame with 1009 and a flood with 1008', async () => {
    const client = await connect();
    client.sendRaw('nope');
    expect(await client.next('error')).toMatchObject({ code: 'bad_json' });
    client.sendRaw(Buffer.from([1, 2]), true);
    expect(await client.next('error')).toMatchObject({ code: 'bad_frame' });
    const big = await connect();
    big.sendRaw(JSON.stringify({ type: 'ping', id: 'x', pad: 'x'.repeat(6000) }));
    expect((await big.closed).code).toBe(CloseCodes.MessageTooBig.code);
    for (let i = 0; i < 3; i++) client.sendRaw('nope');
    expect((await client.closed).code).toBe(CloseCodes.PolicyViolation.code);
  });

  it('cancels the generations of a closed socket and frees the sequence', async () => {
    const leaver = await connect();
    const { sessionId } = await openSession(leaver);
    const genId = await startChat(leaver, sessionId, 'Once upon a time', { maxTokens: 2000, temperature: 0 });
    await leaver.next('token', (f) => f.genId === genId);
    leaver.socket.terminate();
    const other = await connect();
    const { sessionId: mine } = await openSession(other);
    const answer = await collect(other, await startChat(other, mine, 'Hi', { maxTokens: 5 }));
    expect(answer.done.timings.queuedMs).toBeLessThan(1000);
    await other.close();
  });

  it('serves HTTP: readiness, the widget and a streamed chat completion', async () => {
    expect((await fetch(`${harness.httpUrl}/readyz`)).status).toBe(200);
    expect((await fetch(`${harness.httpUrl}/llm-chat.js`)).headers.get('content-type')).toContain('javascript');
    const response = await fetch(`${harness.httpUrl}/v1/chat/completions`, {
      method: 'POST',
      headers: { ...auth.headers, 'content-type': 'application/json' },
      body: JSON.stringify({ messages: [{ role: 'user', content: 'Hello' }], max_tokens: 8, stream: true }),
    });
    expect(response.headers.get('content-type')).toBe('text/event-stream');
    const text = await response.text();
    expect(text.trimEnd().endsWith('data: [DONE]')).toBe(true);
    const unauthorized = await fetch(`${harness.httpUrl}/v1/completions`, { method: 'POST', body: '{}' });
    expect(unauthorized.status).toBe(401);
  });
});

/** Sends `pieces` one a second, then keeps the socket open; whether the server ended it within 18 s, and what it said. */
function trickle(port: number, pieces: string[]): Promise<{ closed: boolean; received: string }> {
  return new Promise((resolve) => {
    const socket = connectTcp(port, '127.0.0.1');
    socket.on('error', () => undefined);
    let received = '';
    socket.on('data', (data) => {
      received += data.toString();
    });
    let sent = 0;
    const drip = setInterval(() => {
      if (sent < pieces.length) socket.write(pieces[sent++] ?? '');
    }, 1000);
    const giveUp = setTimeout(() => finish(false), 18_000);
    const finish = (closed: boolean) => {
      clearInterval(drip);
      clearTimeout(giveUp);
      socket.destroy();
      resolve({ closed, received });
    };
    socket.on('close', () => finish(true));
    socket.on('end', () => finish(true));
  });
}
