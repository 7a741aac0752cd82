import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { axeViolations, hasChromium, launchBrowser, screenshot, widget } from '../helpers/browser.js';
import { EmbeddingSite } from '../helpers/EmbeddingSite.js';
import { startTestServer } from '../helpers/startTestServer.js';
import { TcpProxy } from '../helpers/TcpProxy.js';

/** The README's embedding snippet, verbatim but for the address of the server under test. */
function readmeSnippet(host: string): string {
  const readme = readFileSync(join(import.meta.dirname, '..', '..', 'README.md'), 'utf8');
  const snippet = [...readme.matchAll(/```html\n([\s\S]*?)```/g)]
    .map((match) => match[1] ?? '')
    .find((block) => block.includes('/llm-chat.js'));
  if (snippet === undefined) throw new Error('No ```html block with /llm-chat.js in README.md');
  return snippet.replaceAll('127.0.0.1:8080', host);
}

function embeddingPage(body: string): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Another site</title></head>
<body><main><h1>Another site</h1>${body}</main></body></html>`;
}

/** Counts the WebSockets a page opens (each connection attempt is one). */
function countSockets(page: Page): { count: number } {
  const sockets = { count: 0 };
  page.on('websocket', () => {
    sockets.count += 1;
  });
  return sockets;
}

describe.skipIf(!hasChromium)('the widget embedded in a page of another origin, on an open server', () => {
  let allowed: EmbeddingSite;
  let other: EmbeddingSite;
  let harness: Awaited<ReturnType<typeof startTestServer>>;
  let browser: BrowserContext;
  beforeAll(async () => {
    allowed = await EmbeddingSite.start();
    other = await EmbeddingSite.start();
    harness = await startTestServer({ allowedOrigins: [allowed.origin] });
    const snippet = readmeSnippet(`127.0.0.1:${harness.port}`);
    allowed.page = embeddingPage(snippet);
    other.page = embeddingPage(snippet);
    browser = await launchBrowser();
  });
  afterAll(async () => {
    await browser?.close();
    await harness?.stop();
    await allowed?.close();
    await other?.close();
  });

  it("loads from the README's snippet on an allowed origin and chats", async () => {
    const page = await browser.newPage();
    const script = page.waitForResponse((response) => response.url().endsWith('/llm-chat.js'));
    await page.goto(allowed.origin);
    expect((await script).headers()['access-control-allow-origin']).toBe('*');
    const chat = widget(page);
    await chat.waitConnected();
    await chat.settings(0, 30);
    await chat.send('Once upon a time');
    await chat.waitAnswered();
    expect((await chat.lastAnswerText()).length).toBeGreaterThan(10);
    expect(await axeViolations(page)).toEqual([]);
    await screenshot(page, 'embedded-other-origin');
    await page.close();
  });

  it('works on a page whose Content-Security-Policy allows only the chat server (no inline styles)', async () => {
    const server = `127.0.0.1:${harness.port}`;
    allowed.pageHeaders = {
      'content-security-policy': `default-src 'none'; script-src http://${server}; connect-src ws://${server} http://${server}; style-src 'self'`,
    };
    // The snippet's own style attribute is the page's inline style, which such a policy refuses.
    allowed.page = embeddingPage(readmeSnippet(server).replace(/ style="[^"]*"/, ''));
    const page = await browser.newPage();
    const violations: string[] = [];
    page.on('console', (message) => {
      if (/Content.Security.Policy/i.test(message.text())) violations.push(message.text());
    });
    await page.goto(allowed.origin);
    const chat = widget(page);
    await chat.waitConnected();
    expect(await page.locator('llm-chat .chat').evaluate((element) => getComputedStyle(element).borderRadius)).toBe(
      '10px',
    );
    await chat.send('Once upon a time');
    await chat.waitAnswered();
    expect(violations).toEqual([]);
    allowed.pageHeaders = {};
    allowed.page = embeddingPage(readmeSnippet(server));
    await page.close();
  });

  it('says in plain words that an origin is not allowed, and stops trying', async () => {
    const page = await browser.newPage();
    const sockets = countSockets(page);
    await page.goto(other.origin);
    const problem = page.locator('llm-chat .problem-text');
    await problem.filter({ hasText: '--allowed-origins' }).waitFor();
    expect(await problem.textContent()).toContain(`This page (${other.origin}) may not use the chat server`);
    expect(await page.locator('llm-chat .state').textContent()).toBe('Not connected');
    await page.locator('llm-chat button.retry').waitFor();
    // No retry in the background: one attempt, and none after it.
    await page.waitForTimeout(1500);
    expect(sockets.count).toBe(1);
    expect(await page.locator('llm-chat button.send').isDisabled()).toBe(true);
    expect(await axeViolations(page)).toEqual([]);
    await screenshot(page, 'refused-origin');
    // "Try again" tries once more, and is refused the same way.
    await page.locator('llm-chat button.retry').click();
    await expect.poll(() => sockets.count).toBe(2);
    await page.locator('llm-chat .state', { hasText: 'Not connected' }).waitFor();
    await page.close();
  });
});

describe.skipIf(!hasChromium)('the widget on a keyed server, with tickets from the embedding site', () => {
  const apiKey = 'site-key-0123456789abcdef';
  let site: EmbeddingSite;
  let harness: Awaited<ReturnType<typeof startTestServer>>;
  let proxy: TcpProxy;
  let browser: BrowserContext;
  beforeAll(async () => {
    site = await EmbeddingSite.start();
    harness = await startTestServer({ apiKeys: apiKey, allowedOrigins: [site.origin] });
    proxy = await TcpProxy.start(harness.port);
    site.tickets = { serverUrl: harness.httpUrl, apiKey };
    browser = await launchBrowser();
  });
  afterAll(async () => {
    await browser?.close();
    await proxy?.close();
    await harness?.stop();
    await site?.close();
  });

  function embed(attributes: string): string {
    const host = `127.0.0.1:${proxy.port}`;
    return embeddingPage(
      `<script type="module" src="http://${host}/llm-chat.js"></script>
<llm-chat server="ws://${host}/v1/ws" ${attributes} style="height: 560px"></llm-chat>`,
    );
  }

  it('fetches a ticket from ticket-url before each connection, chats, and reconnects with a fresh one', async () => {
    site.page = embed('ticket-url="/chat-ticket"');
    const page = await browser.newPage();
    const chat = widget(page);
    await page.goto(site.origin);
    await chat.waitConnected();
    expect(site.ticketRequests).toBe(1);
    await chat.settings(0, 20);
    await chat.send('A cat sat.');
    await chat.waitAnswered();

    proxy.cut();
    await page.locator('llm-chat .state[data-state="reconnecting"]').waitFor();
    await chat.waitConnected();
    expect(site.ticketRequests).toBe(2);
    await chat.send('And then?');
    await chat.waitAnswered();
    expect(await chat.user.count()).toBe(2);
    await page.close();
  });

  it('says that a keyed server needs a ticket-url when the page gives none, and stops', async () => {
    site.page = embed('');
    const page = await browser.newPage();
    const sockets = countSockets(page);
    await page.goto(site.origin);
    await page.locator('llm-chat .problem-text', { hasText: 'ticket-url' }).waitFor();
    expect(await page.locator('llm-chat .problem-text').textContent()).toContain('needs an API key');
    await page.waitForTimeout(1000);
    expect(sockets.count).toBe(1);
    await page.close();
  });

  it('says that the site handed out no ticket when its backend refuses, and stops', async () => {
    site.page = embed('ticket-url="/no-ticket"');
    const page = await browser.newPage();
    await page.goto(site.origin);
    await page.locator('llm-chat .problem-text', { hasText: 'did not hand out a chat ticket (401)' }).waitFor();
    expect(await page.locator('llm-chat .state').textContent()).toBe('Not connected');
    await page.close();
  });
});
