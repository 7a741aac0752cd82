import { get as httpGet } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { PROTOCOL_VERSION } from '../../protocol/index.js';
import { EchoEngine } from '../doubles/EchoEngine.js';
import { chat, openSession, startChat } from '../helpers/conversation.js';
import { startTestServer } from '../helpers/startTestServer.js';
import { TestClient } from '../helpers/TestClient.js';

const KEY_A = 'sk-test-aaaaaaaaaaaaaaaaaaaaaaaa';
const KEY_B = 'sk-test-bbbbbbbbbbbbbbbbbbbbbbbb';
/** The echo double, answering long enough to act while it runs. */
const longAnswers = () => new EchoEngine({ tokenDelayMs: 1, answerTokens: 400 });

/** Opens a WebSocket and returns the HTTP status and body of a refused upgrade. */
function refusedUpgrade(url: string, protocols: string[], headers: Record<string, string> = {}) {
  return new Promise<{ status: number; body: Record<string, unknown> }>((resolve, reject) => {
    const socket = new WebSocket(url, protocols, { headers });
    socket.on('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (chunk: Buffer) => (body += chunk.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(body) as Record<string, unknown> }));
    });
    socket.on('open', () => reject(new Error('the upgrade should have been refused')));
  });
}

describe('API keys and browser tickets', () => {
  let harness: Awaited<ReturnType<typeof startTestServer>>;
  const logLines: string[] = [];
  beforeAll(async () => {
    harness = await startTestServer(
      { apiKeys: `${KEY_A},${KEY_B}`, allowedOrigins: 'https://app.example' },
      { logLines, engine: longAnswers() },
    );
  });
  afterAll(() => harness.stop());

  const withKey = (key: string) => ({ headers: { authorization: `Bearer ${key}` } });
  const connectWithKey = (key: string) => TestClient.connect(harness.wsUrl, [PROTOCOL_VERSION], withKey(key));

  it('refuses an upgrade without a key, or with a wrong one, with 401 unauthorized', async () => {
    const attempts: Array<Record<string, string>> = [
      {},
      { authorization: 'Bearer sk-wrong-key-xxxxxxxxxxxxxxxx' },
      { authorization: 'Basic abc' },
    ];
    for (const headers of attempts) {
      const refused = await refusedUpgrade(harness.wsUrl, [PROTOCOL_VERSION], headers);
      expect(refused.status).toBe(401);
      expect(refused.body).toMatchObject({ error: { code: 'unauthorized' } });
    }
  });

  it('lets a bot in with Authorization: Bearer <key>', async () => {
    const client = await connectWithKey(KEY_A);
    const { sessionId } = await openSession(client);
    const answer = await chat(client, sessionId, 'Hello', { maxTokens: 5 });
    expect(['stop', 'length']).toContain(answer.done.finish);
    await client.close();
  });

  it('lets a browser in with a single-use ticket as a second subprotocol, echoing llm-chat.v1', async () => {
    const response = await fetch(`${harness.httpUrl}/v1/tickets`, { method: 'POST', ...withKey(KEY_A) });
    expect(response.status).toBe(200);
    expect(response.headers.get('cache-control')).toBe('no-store');
    const { ticket, expiresInMs, subprotocol } = (await response.json()) as {
      ticket: string;
      expiresInMs: number;
      subprotocol: string;
    };
    expect(expiresInMs).toBeGreaterThan(0);
    expect(subprotocol).toBe(`ticket.${ticket}`);

    const browser = await TestClient.connect(harness.wsUrl, [PROTOCOL_VERSION, subprotocol]);
    expect(browser.socket.protocol).toBe(PROTOCOL_VERSION);
    await browser.close();
    const again = await refusedUpgrade(harness.wsUrl, [PROTOCOL_VERSION, subprotocol]);
    expect(again.status).toBe(401);
  });

  it('issues tickets only for a valid key, and only on POST', async () => {
    expect((await fetch(`${harness.httpUrl}/v1/tickets`, { method: 'POST' })).status).toBe(401);
    expect(
      (await fetch(`${harness.httpUrl}/v1/tickets`, { method: 'POST', ...withKey('sk-nope-nope-nope-nope') })).status,
    ).toBe(401);
    expect((await fetch(`${harness.httpUrl}/v1/tickets`, withKey(KEY_A))).status).toBe(405);
  });

  it('refuses browser origins that are neither the server itself nor allowed, with 403', async () => {
    const evil = await refusedUpgrade(harness.wsUrl, [PROTOCOL_VERSION], {
      ...withKey(KEY_A).headers,
      origin: 'https://evil.example',
    });
    expect(evil).toMatchObject({ status: 403, body: { error: { code: 'forbidden' } } });
    for (const origin of ['https://app.example', harness.httpUrl]) {
      const client = await TestClient.connect(harness.wsUrl, [PROTOCOL_VERSION], {
        headers: { ...withKey(KEY_A).headers, origin },
      });
      await client.close();
    }
  });

  it("keeps one key's sessions and generations invisible to another key (not_found, never forbidden)", async () => {
    const owner = await connectWithKey(KEY_A);
    const other = await connectWithKey(KEY_B);
    const opened = await openSession(owner);
    const genId = await startChat(owner, opened.sessionId, 'Once upon a time', { maxTokens: 300 });

    other.send({ type: 'session.open', id: 'steal', sessionId: opened.sessionId, resumeToken: opened.resumeToken });
    expect(await other.next('error', (f) => f.id === 'steal')).toMatchObject({ code: 'not_found' });
    other.send({ type: 'generation.cancel', id: 'cancel', genId });
    expect(await other.next('cancel.ack', (f) => f.id === 'cancel')).toMatchObject({ status: 'not_found' });
    other.send({ type: 'generation.resume', id: 'read', genId, afterSeq: 0 });
    expect(await other.next('error', (f) => f.id === 'read')).toMatchObject({ code: 'not_found' });
    other.send({ type: 'chat.send', id: 'write', sessionId: opened.sessionId, content: 'hi' });
    expect(await other.next('error', (f) => f.id === 'write')).toMatchObject({ code: 'not_found' });

    // The same key, on another connection, may reattach it.
    const sameKey = await connectWithKey(KEY_A);
    sameKey.send({ type: 'session.open', id: 'mine', sessionId: opened.sessionId, resumeToken: opened.resumeToken });
    expect(await sameKey.next('session.opened', (f) => f.id === 'mine')).toMatchObject({ resumed: true });
    await owner.next('generation.done', (f) => f.genId === genId);
    await Promise.all([owner.close(), other.close(), sameKey.close()]);
  });

  it('never writes a key, a ticket or message text into its logs', async () => {
    const { ticket } = (await (
      await fetch(`${harness.httpUrl}/v1/tickets`, { method: 'POST', ...withKey(KEY_B) })
    ).json()) as { ticket: string };
    const browser = await TestClient.connect(harness.wsUrl, [PROTOCOL_VERSION, `ticket.${ticket}`]);
    const { sessionId } = await openSession(browser);
    await chat(browser, sessionId, 'a secret message about turnips', { maxTokens: 5 });
    await browser.close();
    const logs = logLines.join('\n');
    expect(logs).toContain('connection open');
    for (const secret of [KEY_A, KEY_B, ticket, 'turnips']) expect(logs).not.toContain(secret);
  });
});

describe('open mode (no keys)', () => {
  it('refuses requests whose Host or Origin is not loopback, as a DNS-rebinding page would send', async () => {
    const harness = await startTestServer({}, { engine: longAnswers() });
    const rebound = { host: 'evil.example:8080', origin: 'http://evil.example:8080' };
    const refused = await refusedUpgrade(harness.wsUrl, [PROTOCOL_VERSION], rebound);
    expect(refused).toMatchObject({ status: 403, body: { error: { code: 'forbidden' } } });
    const api = await fetch(`${harness.httpUrl}/v1/completions`, {
      method: 'POST',
      headers: rebound,
      body: '{"prompt":"hi"}',
    });
    expect(api.status).toBe(403);
    for (const path of ['/metrics', '/v1/models', '/readyz', '/healthz', '/', '/llm-chat.js']) {
      for (const host of ['evil.example', '127.0.0.1:80.evil.com', '[::1].evil.com', 'localhost.evil.com']) {
        const answer = await getWithHost(`${harness.httpUrl}${path}`, host);
        expect([path, host, answer.status]).toEqual([path, host, 403]);
        expect(JSON.parse(answer.body)).toMatchObject({ error: { code: 'forbidden' } });
      }
      const foreignOrigin = await fetch(`${harness.httpUrl}${path}`, { headers: { origin: 'http://evil.example' } });
      expect([path, foreignOrigin.status]).toEqual([path, 403]);
    }
    for (const host of [`127.0.0.1:${harness.port}`, `localhost:${harness.port}`, `[::1]:80`]) {
      expect((await getWithHost(`${harness.httpUrl}/readyz`, host)).status).toBe(200);
    }
    const local = await TestClient.connect(harness.wsUrl);
    await local.close();
    await harness.stop();
  });

  it('answers 405 to methods other than GET on /v1/models', async () => {
    const harness = await startTestServer({}, { engine: longAnswers() });
    for (const method of ['POST', 'PUT', 'PATCH', 'DELETE']) {
      const answer = await fetch(`${harness.httpUrl}/v1/models`, { method });
      expect([method, answer.status]).toEqual([method, 405]);
    }
    expect((await fetch(`${harness.httpUrl}/v1/models`)).status).toBe(200);
    await harness.stop();
  });
});

/** A GET with a Host header of our choosing (fetch always sends the URL's). */
function getWithHost(url: string, host: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const request = httpGet(url, { headers: { host } }, (response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => {
        body += chunk;
      });
      response.on('end', () => resolve({ status: response.statusCode ?? 0, body }));
    });
    request.on('error', reject);
  });
}
