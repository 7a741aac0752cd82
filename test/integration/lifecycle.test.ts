import uWS from 'uWebSockets.js';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { CloseCodes, PROTOCOL_VERSION } from '../../protocol/index.js';
import { defaultStorePath } from '../../server/store/openStore.js';
import { spawnServer } from '../../tooling/serverProcess.js';
import { collect, openSession, startChat } from '../helpers/conversation.js';
import { expectedBinary } from '../helpers/expectedBinary.js';
import { startTestServer } from '../helpers/startTestServer.js';
import { TestClient } from '../helpers/TestClient.js';

describe('readiness', () => {
  it('answers /healthz at once and /readyz with 503 until the model is loaded, then 200 naming the binary', async () => {
    const harness = await startTestServer({}, { waitReady: false });
    const health = await fetch(`${harness.httpUrl}/healthz`);
    expect(health.status).toBe(200);
    expect(await health.json()).toEqual({ status: 'ok' });
    const before = await fetch(`${harness.httpUrl}/readyz`);
    expect(before.status).toBe(503);
    expect(await before.json()).toEqual({ status: 'loading' });

    await harness.server.ready;
    const after = await fetch(`${harness.httpUrl}/readyz`);
    expect(after.status).toBe(200);
    expect(await after.json()).toMatchObject({
      status: 'ready',
      model: { modelName: 'stories260K', sequences: expect.any(Number), binary: expectedBinary() },
    });
    await harness.stop();
  });

  it('refuses WebSocket upgrades with 503 not_ready while the model loads', async () => {
    const harness = await startTestServer({}, { waitReady: false });
    const socket = new WebSocket(harness.wsUrl, [PROTOCOL_VERSION]);
    const status = await new Promise<number>((resolve, reject) => {
      socket.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
      socket.on('open', () => reject(new Error('upgrade should be refused while loading')));
    });
    expect(status).toBe(503);
    await harness.server.ready;
    const client = await TestClient.connect(harness.wsUrl);
    await client.close();
    await harness.stop();
  });

  it('serves the web demo at / and 404 JSON for unknown paths, even ../ ones', async () => {
    const harness = await startTestServer();
    const page = await fetch(`${harness.httpUrl}/`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toContain('text/html');
    const missing = await fetch(`${harness.httpUrl}/nope.js`);
    expect(missing.status).toBe(404);
    expect(await missing.json()).toMatchObject({ error: { code: 'not_found' } });
    const outside = await fetch(`${harness.httpUrl}/%2e%2e/package.json`);
    expect(outside.status).toBe(404);
    await harness.stop();
  });
});

describe('graceful stop', () => {
  it('on SIGTERM notifies clients, lets a running generation end, closes with 1001 and exits 0', async () => {
    const spawned = spawnServer(['--shutdown-grace-ms', '5000']);
    const port = await spawned.port();
    await spawned.ready();
    const client = await TestClient.connect(`ws://127.0.0.1:${port}/v1/ws`);
    const { sessionId } = await openSession(client);
    const genId = await startChat(client, sessionId, 'Once upon a time', { maxTokens: 300 });
    await client.next('token', (f) => f.genId === genId);

    spawned.child.kill('SIGTERM');
    expect(await client.next('server.notice')).toEqual({ type: 'server.notice', kind: 'shutdown', graceMs: 5000 });
    // During the grace period the port still answers: 503 shutting_down, never a refused connection.
    const ready = await fetch(`http://127.0.0.1:${port}/readyz`);
    expect(ready.status).toBe(503);
    expect(await ready.json()).toMatchObject({ status: 'shutting_down' });
    const socket = new WebSocket(`ws://127.0.0.1:${port}/v1/ws`, [PROTOCOL_VERSION]);
    const upgrade = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      socket.on('unexpected-response', (_req, res) => {
        let body = '';
        res.on('data', (chunk: Buffer) => {
          body += chunk.toString();
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      });
      socket.on('error', reject);
    });
    expect(upgrade.status).toBe(503);
    expect(JSON.parse(upgrade.body)).toMatchObject({ error: { code: 'shutting_down', retryable: true } });
    const answer = await collect(client, genId);
    expect(['stop', 'length']).toContain(answer.done.finish);
    expect((await client.closed).code).toBe(CloseCodes.ShuttingDown.code);
    expect(await spawned.exited).toEqual({ code: 0, signal: null });
  });

  it('cancels generations still running when the grace period ends', async () => {
    const spawned = spawnServer(['--shutdown-grace-ms', '200']);
    const port = await spawned.port();
    await spawned.ready();
    const client = await TestClient.connect(`ws://127.0.0.1:${port}/v1/ws`);
    const { sessionId } = await openSession(client);
    const genId = await startChat(client, sessionId, 'Once upon a time', { maxTokens: 2000, temperature: 0 });
    await client.next('token', (f) => f.genId === genId);
    spawned.child.kill('SIGTERM');
    const answer = await collect(client, genId);
    expect(answer.done.finish).toBe('cancelled');
    expect(await spawned.exited).toEqual({ code: 0, signal: null });
  });
});

describe('start-up refusals', () => {
  it('exits 2 when a key setting holds no key, instead of running open on every interface', async () => {
    const spawned = spawnServer(['--host', '0.0.0.0'], { API_KEYS: ',' });
    expect((await spawned.exited).code).toBe(2);
    expect(spawned.output.join('\n')).toMatch(/API_KEYS.*holds no key/);
    expect(spawned.output.join('\n')).not.toContain('listening');
  });

  it.each(['uws', 'ws'])('exits 1 naming the port when another process holds it (%s transport)', async (transport) => {
    // A uWebSockets.js listener in its default mode shares its port with any other that asks the same.
    const squatter = await new Promise<uWS.us_listen_socket>((resolve, reject) =>
      uWS.App().listen('127.0.0.1', 0, (socket) => (socket === false ? reject(new Error('no port')) : resolve(socket))),
    );
    const port = uWS.us_socket_local_port(squatter);
    const spawned = spawnServer(['--port', String(port), '--transport', transport]);
    expect((await spawned.exited).code).toBe(1);
    expect(spawned.output.join('\n')).toContain(`Cannot listen on 127.0.0.1:${port}`);
    expect(spawned.output.join('\n')).not.toMatch(/"msg":"listening"/);
    uWS.us_listen_socket_close(squatter);
  });
});

describe('model resolution', () => {
  it('serves the tiny model committed in models/ from the build `npm start` runs, with no settings', async () => {
    // dist/ is built by `npm test`'s pretest step (npm run build), as by `npm start`'s prestart.
    // No model and no store setting: the embedded model, and conversations in the user's data directory.
    const home = mkdtempSync(join(tmpdir(), 'llm-chat-home-'));
    const spawned = spawnServer([], { MODEL_PATH: '', MODEL: '', STORE: '', HOME: home }, [], 'built');
    const port = await spawned.port();
    await spawned.ready();
    const ready = await fetch(`http://127.0.0.1:${port}/readyz`);
    expect(await ready.json()).toMatchObject({ status: 'ready', model: { modelName: 'stories260K' } });
    expect(existsSync(defaultStorePath(home))).toBe(true);
    spawned.child.kill('SIGTERM');
    expect((await spawned.exited).code).toBe(0);
    rmSync(home, { recursive: true, force: true });
  });

  it('exits non-zero within seconds, naming MODEL_PATH, when the model file is missing', async () => {
    const started = performance.now();
    const spawned = spawnServer([], { MODEL_PATH: '/nonexistent/model.gguf' });
    const exit = await spawned.exited;
    expect(exit.code).not.toBe(0);
    expect(performance.now() - started).toBeLessThan(15_000);
    expect(spawned.output.join('\n')).toContain('MODEL_PATH');
  });

  it('exits non-zero within seconds, naming MODEL_PATH, when the model cannot be downloaded', async () => {
    const started = performance.now();
    // A URL nobody serves: the same path as an offline hub download, without touching the network.
    const spawned = spawnServer([], {
      MODEL_PATH: '',
      MODEL: 'http://127.0.0.1:9/stories.gguf',
      MODEL_CACHE_DIR: '/tmp/llm-chat-test-empty-cache',
    });
    const exit = await spawned.exited;
    expect(exit.code).not.toBe(0);
    expect(performance.now() - started).toBeLessThan(15_000);
    expect(spawned.output.join('\n')).toMatch(/not reachable.*MODEL_PATH/s);
  });
});
