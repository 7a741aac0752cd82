import { type AddressInfo, createServer } from 'node:net';
import type { BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EchoEngine } from '../doubles/EchoEngine.js';
import { hasChromium, launchBrowser, screenshot, widget } from '../helpers/browser.js';
import { startTestServer } from '../helpers/startTestServer.js';
import { TcpProxy } from '../helpers/TcpProxy.js';

const QUESTION = 'one two three four five';
const ANSWER_TOKENS = 300;
/** The echo double's answer: the question's words (each with the space after it), cycled, one every 10 ms. */
const EXPECTED = Array.from({ length: ANSWER_TOKENS }, (_, index) => QUESTION.split(/(?<= )/)[index % 5])
  .join('')
  .trim();

function answerLength(page: Page): Promise<number> {
  return page.evaluate(
    () =>
      document.querySelector('llm-chat')?.shadowRoot?.querySelector('.msg.assistant:last-child .md')?.textContent
        ?.length ?? 0,
  );
}

describe.skipIf(!hasChromium)('nothing vanishes from the widget', () => {
  let harness: Awaited<ReturnType<typeof startTestServer>>;
  let proxy: TcpProxy;
  let browser: BrowserContext;
  beforeAll(async () => {
    harness = await startTestServer({}, { engine: new EchoEngine({ tokenDelayMs: 10, answerTokens: ANSWER_TOKENS }) });
    proxy = await TcpProxy.start(harness.port);
    browser = await launchBrowser();
  });
  afterAll(async () => {
    await browser?.close();
    await proxy?.close();
    await harness?.stop();
  });

  /** A page on a new conversation, with an answer streaming and some of it shown. */
  async function answering() {
    const page = await browser.newPage();
    await page.goto(`http://127.0.0.1:${proxy.port}/`);
    const chat = widget(page);
    await chat.waitConnected();
    await page.locator('llm-chat button.new').click();
    await chat.waitConnected();
    await chat.settings(0, 1000);
    await chat.send(QUESTION);
    await page.waitForFunction(
      () =>
        (document.querySelector('llm-chat')?.shadowRoot?.querySelector('.msg.assistant .md')?.textContent?.length ??
          0) > 100,
    );
    return { page, chat };
  }

  it('picks up an answer streaming during a reload: the text so far at once, then the rest', async () => {
    const { page, chat } = await answering();
    const before = await answerLength(page);
    await page.reload();
    const reloadedAt = Date.now();
    await page.waitForFunction((length) => {
      const text = document.querySelector('llm-chat')?.shadowRoot?.querySelector('.msg.assistant .md')?.textContent;
      return (text?.length ?? 0) >= length;
    }, before);
    const shownAfterMs = Date.now() - reloadedAt;
    expect(shownAfterMs).toBeLessThan(3000);
    expect(await chat.user.allTextContents()).toEqual([QUESTION]);
    await page.locator('llm-chat button.stop:not([disabled])').waitFor();
    await chat.waitAnswered();
    expect(await chat.lastAnswerText()).toBe(EXPECTED);
    expect(await chat.status.textContent()).toContain('Picked up after the page was left');

    // Once it has ended, a reload shows it once, from the history.
    await page.reload();
    await chat.waitConnected();
    await chat.assistant.first().waitFor();
    expect(await chat.user.count()).toBe(1);
    expect(await chat.assistant.count()).toBe(1);
    expect(await chat.lastAnswerText()).toBe(EXPECTED);
    await page.close();
  });

  it('stops an answer it picked up after a reload', async () => {
    const { page, chat } = await answering();
    await page.reload();
    await page.locator('llm-chat button.stop:not([disabled])').click();
    await chat.waitAnswered();
    expect(await chat.assistant.last().locator('.note').textContent()).toBe('Stopped.');
    await page.close();
  });

  it('is honest while the server is gone (no "Answering…", Stop off, Send refused in words), then finishes the answer', async () => {
    const { page, chat } = await answering();
    // Where the server was, nothing answers: every connection is dropped at once.
    const gone = createServer((socket) => socket.destroy());
    await new Promise<void>((resolve) => gone.listen(0, '127.0.0.1', resolve));
    proxy.retarget((gone.address() as AddressInfo).port);
    proxy.cut();
    await page.locator('llm-chat .problem-text', { hasText: 'Cannot reach the chat server' }).waitFor();
    expect({
      state: await page.locator('llm-chat .state').textContent(),
      status: await chat.status.textContent(),
      stopDisabled: await page.locator('llm-chat button.stop').isDisabled(),
      sendDisabled: await page.locator('llm-chat button.send').isDisabled(),
    }).toEqual({
      state: 'Reconnecting…',
      status: 'Connection lost: the answer goes on from where it was once reconnected.',
      stopDisabled: true,
      sendDisabled: true,
    });
    await page.locator('llm-chat textarea').fill('Are you there?');
    await page.locator('llm-chat textarea').press('Enter');
    expect(await chat.status.textContent()).toBe(
      'Not connected: your message stays in the box until the connection is back.',
    );
    expect(await page.locator('llm-chat textarea').inputValue()).toBe('Are you there?');
    await screenshot(page, 'server-gone');

    proxy.retarget(harness.port);
    gone.close();
    await chat.waitAnswered();
    expect(await chat.lastAnswerText()).toBe(EXPECTED);
    await page.close();
  });
});
