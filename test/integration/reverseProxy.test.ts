import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { get as httpGet, type IncomingMessage } from 'node:http';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROTOCOL_VERSION } from '../../protocol/index.js';
import { accepts, freePort } from '../../tooling/ports.js';
import { chat, openSession } from '../helpers/conversation.js';
import { startTestServer } from '../helpers/startTestServer.js';
import { TestClient } from '../helpers/TestClient.js';

const NGINX = '/usr/sbin/nginx';
const KEY = 'sk-test-behind-nginx-0123456789';
const HOST = 'chat.example.com';

/**
 * docs/deploy/nginx.conf as written, with only the names an operator replaces substituted:
 * ports, certificate paths and the upstream address. Debian's nginx (apt nginx-light).
 */
describe.skipIf(!existsSync(NGINX))('behind nginx with TLS (docs/deploy/nginx.conf)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'llm-chat-nginx-'));
  let harness: Awaited<ReturnType<typeof startTestServer>>;
  let nginx: ChildProcess;
  let httpsPort = 0;
  let httpPort = 0;

  beforeAll(async () => {
    harness = await startTestServer({ apiKeys: KEY });
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-days',
        '1',
        '-subj',
        `/CN=${HOST}`,
        '-keyout',
        join(dir, 'site.key'),
        '-out',
        join(dir, 'site.pem'),
      ],
      { stdio: 'ignore' },
    );
    [httpsPort, httpPort] = [await freePort(), await freePort()];
    const site = readFileSync('docs/deploy/nginx.conf', 'utf8')
      .replace('listen 443 ssl http2;', `listen 127.0.0.1:${httpsPort} ssl http2;`)
      .replace('listen 80;', `listen 127.0.0.1:${httpPort};`)
      .replace('/etc/ssl/certs/chat.example.com.pem', join(dir, 'site.pem'))
      .replace('/etc/ssl/private/chat.example.com.key', join(dir, 'site.key'))
      .replace('server 127.0.0.1:8080;', `server 127.0.0.1:${harness.port};`);
    writeFileSync(join(dir, 'site.conf'), site);
    const temp = (name: string) => `${name}_temp_path ${join(dir, name)};`;
    writeFileSync(
      join(dir, 'nginx.conf'),
      `worker_processes 1; pid ${join(dir, 'nginx.pid')}; error_log ${join(dir, 'error.log')};
       events {}
       http { access_log off; ${['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map(temp).join(' ')}
              include ${join(dir, 'site.conf')}; }`,
    );
    chmodSync(dir, 0o777);
    nginx = spawn(NGINX, ['-p', dir, '-c', join(dir, 'nginx.conf'), '-g', 'daemon off;'], { stdio: 'ignore' });
    const deadline = Date.now() + 10_000;
    while (!(await accepts(httpsPort))) {
      if (Date.now() > deadline)
        throw new Error(`nginx did not start: ${readFileSync(join(dir, 'error.log'), 'utf8')}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  });
  afterAll(async () => {
    nginx?.kill('SIGTERM');
    await harness?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('carries a conversation over wss, the upgrade passed through', async () => {
    const client = await TestClient.connect(`wss://127.0.0.1:${httpsPort}/v1/ws`, [PROTOCOL_VERSION], {
      headers: { host: HOST, authorization: `Bearer ${KEY}` },
      rejectUnauthorized: false,
    });
    const { sessionId } = await openSession(client);
    const answer = await chat(client, sessionId, 'Once upon a time', { maxTokens: 20 });
    expect(answer.tokens.length).toBeGreaterThan(1);
    expect(['stop', 'length']).toContain(answer.done.finish);
    await client.close();
  });

  it('streams server-sent events unbuffered over https, and redirects http to https', async () => {
    const body = JSON.stringify({
      messages: [{ role: 'user', content: 'Once upon a time' }],
      max_tokens: 20,
      stream: true,
    });
    const { status, type, text } = await new Promise<{ status: number; type: string; text: string }>(
      (resolve, reject) => {
        const req = request(
          {
            host: '127.0.0.1',
            port: httpsPort,
            path: '/v1/chat/completions',
            method: 'POST',
            servername: HOST,
            rejectUnauthorized: false,
            headers: { host: HOST, authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
          },
          (response) => {
            let text = '';
            response.setEncoding('utf8');
            response.on('data', (chunk: string) => (text += chunk));
            response.on('end', () =>
              resolve({ status: response.statusCode ?? 0, type: String(response.headers['content-type']), text }),
            );
          },
        );
        req.on('error', reject);
        req.end(body);
      },
    );
    expect([status, type]).toEqual([200, 'text/event-stream']);
    expect(text.trim().endsWith('data: [DONE]')).toBe(true);
    const redirect = await new Promise<IncomingMessage>((resolve, reject) =>
      httpGet({ host: '127.0.0.1', port: httpPort, path: '/', headers: { host: HOST } }, resolve).on('error', reject),
    );
    redirect.resume();
    expect([redirect.statusCode, redirect.headers.location]).toEqual([301, `https://${HOST}/`]);
  });
});
