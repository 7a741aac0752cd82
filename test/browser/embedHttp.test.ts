import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EchoEngine } from '../doubles/EchoEngine.js';
import { startTestServer } from '../helpers/startTestServer.js';

const PAGE = 'http://127.0.0.1:5173';
const OTHER_LOOPBACK_PAGE = 'http://localhost:9999';

/** What a page on another origin gets over plain HTTP: the widget's files, and why an upgrade would be refused. */
describe.each(['uws', 'ws'] as const)('what the server answers a page of another origin (%s)', (transport) => {
  let open: Awaited<ReturnType<typeof startTestServer>>;
  let keyed: Awaited<ReturnType<typeof startTestServer>>;
  beforeAll(async () => {
    open = await startTestServer({ transport, allowedOrigins: [PAGE] }, { engine: new EchoEngine() });
    keyed = await startTestServer(
      { transport, allowedOrigins: [PAGE], apiKeys: 'key-0123456789abcdef' },
      { engine: new EchoEngine() },
    );
  });
  afterAll(async () => {
    await open?.stop();
    await keyed?.stop();
  });

  const get = (base: string, path: string, origin?: string) =>
    fetch(`${base}${path}`, { headers: origin === undefined ? {} : { origin } });

  it('serves the widget script to any loopback page with Access-Control-Allow-Origin: *, and pages without it', async () => {
    for (const origin of [PAGE, OTHER_LOOPBACK_PAGE]) {
      const script = await get(open.httpUrl, '/llm-chat.js', origin);
      expect(script.status).toBe(200);
      expect(script.headers.get('access-control-allow-origin')).toBe('*');
      expect(script.headers.get('cross-origin-resource-policy')).toBe('cross-origin');
    }
    const page = await get(open.httpUrl, '/');
    expect(page.headers.get('access-control-allow-origin')).toBeNull();
    // A page from a foreign host still gets nothing from an open server (DNS rebinding).
    expect((await get(open.httpUrl, '/llm-chat.js', 'https://elsewhere.example')).status).toBe(403);
  });

  it('serves /favicon.ico', async () => {
    const icon = await get(open.httpUrl, '/favicon.ico');
    expect(icon.status).toBe(200);
    expect(icon.headers.get('content-type')).toBe('image/x-icon');
  });

  it('answers GET /v1/ws with the refusal an upgrade from that page would get, readable by any page', async () => {
    const cases: Array<[string, string | undefined, number, string]> = [
      [open.httpUrl, OTHER_LOOPBACK_PAGE, 403, 'forbidden'],
      [open.httpUrl, PAGE, 426, 'unsupported_version'],
      [keyed.httpUrl, OTHER_LOOPBACK_PAGE, 403, 'forbidden'],
      [keyed.httpUrl, PAGE, 401, 'unauthorized'],
      [keyed.httpUrl, undefined, 401, 'unauthorized'],
    ];
    for (const [base, origin, status, code] of cases) {
      const answer = await get(base, '/v1/ws', origin);
      expect([origin, answer.status]).toEqual([origin, status]);
      expect(answer.headers.get('access-control-allow-origin')).toBe('*');
      expect(((await answer.json()) as { error: { code: string } }).error.code).toBe(code);
    }
  });
});
