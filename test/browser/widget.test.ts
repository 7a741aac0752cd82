import type { BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hasChromium, launchBrowser, screenshot, widget } from '../helpers/browser.js';
import { startTestServer } from '../helpers/startTestServer.js';
import { TcpProxy } from '../helpers/TcpProxy.js';

if (!hasChromium)
  console.warn(
    'Browser tests skipped: no Chromium at /usr/bin/chromium (apt-get install -y chromium, or set CHROMIUM_PATH).',
  );

describe.skipIf(!hasChromium)('the <llm-chat> widget in Chromium', () => {
  let harness: Awaited<ReturnType<typeof startTestServer>>;
  let proxy: TcpProxy;
  let browser: BrowserContext;
  let page: Page;
  beforeAll(async () => {
    harness = await startTestServer({ maxConcurrent: 4 });
    proxy = await TcpProxy.start(harness.port);
    browser = await launchBrowser();
  });
  afterAll(async () => {
    await browser?.close();
    await proxy?.close();
    await harness?.stop();
  });

  /** A fresh page, through the proxy (so the test can cut the network). */
  async function openPage() {
    page = await browser.newPage();
    await page.goto(`http://127.0.0.1:${proxy.port}/`);
    const chat = widget(page);
    await chat.waitConnected();
    return chat;
  }

  /** A fresh page on a new, empty conversation. */
  async function openNewChat() {
    const chat = await openPage();
    await page.locator('llm-chat button.new').click();
    await chat.user.first().waitFor({ state: 'detached' });
    await chat.waitConnected();
    return chat;
  }

  it('streams a full answer', async () => {
    const chat = await openPage();
    await chat.settings(0, 40);
    await chat.send('Once upon a time');
    await chat.waitAnswered();
    expect(await chat.user.last().textContent()).toBe('Once upon a time');
    expect((await chat.lastAnswerText()).length).toBeGreaterThan(10);
    expect(await chat.status.textContent()).toMatch(/First token after \d+ ms · \d+ tokens\/s · \d+ tokens/);
    await screenshot(page, 'full-answer');
    await page.close();
  });

  it('stops mid answer with Esc and shows the acknowledged stop', async () => {
    const chat = await openPage();
    await chat.settings(0, 3000);
    await chat.send('Once upon a time');
    await page.waitForFunction(
      () =>
        (document.querySelector('llm-chat')?.shadowRoot?.querySelector('.msg.assistant')?.textContent ?? '').length >
        40,
    );
    await page.locator('llm-chat textarea').press('Escape');
    await chat.waitAnswered();
    await expect(chat.assistant.last().locator('.note').textContent()).resolves.toBe('Stopped.');
    expect((await chat.lastAnswerText()).length).toBeLessThan(3000 * 2);
    await screenshot(page, 'stopped');
    await page.close();
  });

  it('finishes an answer after the connection drops mid stream, with the text of an uninterrupted run', async () => {
    const reference = await openNewChat();
    await reference.settings(0, 600);
    await reference.send('The little dog');
    await reference.waitAnswered();
    const expected = await reference.lastAnswerText();
    await page.close();

    const chat = await openNewChat();
    await chat.settings(0, 600);
    await chat.send('The little dog');
    await page.waitForFunction(
      () =>
        (document.querySelector('llm-chat')?.shadowRoot?.querySelector('.msg.assistant:last-child')?.textContent ?? '')
          .length > 30,
    );
    proxy.cut();
    await page.locator('llm-chat .state[data-state="reconnecting"]').waitFor();
    await screenshot(page, 'reconnecting');
    await chat.waitAnswered();
    expect(await chat.lastAnswerText()).toBe(expected);
    await screenshot(page, 'resumed');
    await page.close();
  });

  it('restores the conversation after a reload', async () => {
    const chat = await openNewChat();
    await chat.settings(0, 30);
    await chat.send('Tell me about a cat');
    await chat.waitAnswered();
    const answer = await chat.lastAnswerText();
    await page.reload();
    const again = widget(page);
    await again.waitConnected();
    await again.user.last().waitFor();
    expect(await again.user.last().textContent()).toBe('Tell me about a cat');
    expect(await again.lastAnswerText()).toBe(answer);
    // The history says how the answer ended (30 tokens asked), so the note comes back too.
    expect(await again.assistant.last().locator('.note').textContent()).toBe('Reached the maximum length.');
    expect(await page.locator('llm-chat select.conversations option:checked').textContent()).toBe(
      'Tell me about a cat',
    );
    await screenshot(page, 'restored');
    await page.close();
  });

  it("switches between this browser's conversations from the list", async () => {
    const chat = await openNewChat();
    await chat.settings(0, 10);
    await chat.send('A red ball');
    await chat.waitAnswered();
    await page.locator('llm-chat select.conversations').selectOption({ label: 'Tell me about a cat' });
    await chat.user.filter({ hasText: 'Tell me about a cat' }).waitFor();
    expect(await chat.user.allTextContents()).toEqual(['Tell me about a cat']);
    await page.locator('llm-chat select.conversations').selectOption({ label: 'A red ball' });
    await chat.user.filter({ hasText: 'A red ball' }).waitFor();
    expect(await chat.user.allTextContents()).toEqual(['A red ball']);
    await screenshot(page, 'switched');
    await page.close();
  });
});
