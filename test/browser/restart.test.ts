import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BrowserContext } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type SpawnedServer, spawnServer } from '../../tooling/serverProcess.js';
import { hasChromium, launchBrowser, screenshot, widget } from '../helpers/browser.js';
import { TcpProxy } from '../helpers/TcpProxy.js';

describe.skipIf(!hasChromium)('the widget across a server restart (SQLite store)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'llm-chat-widget-store-'));
  const store = `sqlite:${join(dir, 'store.sqlite')}`;
  let server: SpawnedServer;
  let proxy: TcpProxy;
  let browser: BrowserContext;

  async function startServer(): Promise<number> {
    server = spawnServer([], { STORE: store });
    const port = await server.port();
    await server.ready();
    return port;
  }

  beforeAll(async () => {
    proxy = await TcpProxy.start(await startServer());
    browser = await launchBrowser();
  });
  afterAll(async () => {
    await browser?.close();
    await proxy?.close();
    server?.child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });

  it('keeps the conversation, shows the answer cut by a crash as interrupted, and lets the user go on', async () => {
    const page = await browser.newPage();
    await page.goto(`http://127.0.0.1:${proxy.port}/`);
    const chat = widget(page);
    await chat.waitConnected();
    await chat.settings(0, 12);
    await chat.send('A cat sat.');
    await chat.waitAnswered();
    const firstAnswer = await chat.lastAnswerText();

    await chat.settings(0, 3000);
    await chat.send('Once upon a time');
    await page.waitForFunction(
      () =>
        (document.querySelector('llm-chat')?.shadowRoot?.querySelectorAll('.msg.assistant')[1]?.textContent?.length ??
          0) > 40,
    );
    server.child.kill('SIGKILL');
    await server.exited;
    proxy.retarget(await startServer());
    proxy.cut();

    // The widget reconnects on its own, resumes the answer and hears it was interrupted.
    await chat.assistant.nth(1).locator('.note', { hasText: 'Interrupted' }).waitFor({ timeout: 20_000 });
    await chat.waitConnected();
    const partial = await chat.lastAnswerText();
    expect(partial.length).toBeGreaterThan(40);

    // A reload shows the same conversation, note included.
    await page.reload();
    await chat.waitConnected();
    await chat.assistant.nth(1).locator('.note', { hasText: 'Interrupted' }).waitFor();
    expect(await chat.user.allTextContents()).toEqual(['A cat sat.', 'Once upon a time']);
    expect(await chat.assistant.first().textContent()).toContain(firstAnswer);
    expect(await chat.lastAnswerText()).toBe(partial);
    await screenshot(page, 'interrupted-after-restart');

    await chat.settings(0, 8);
    await chat.send('And then?');
    await chat.waitAnswered();
    expect(await chat.user.count()).toBe(3);
    await page.close();
  });
});
