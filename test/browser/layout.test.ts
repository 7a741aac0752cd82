import type { BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EchoEngine } from '../doubles/EchoEngine.js';
import { axeViolations, hasChromium, launchBrowser, screenshot, widget } from '../helpers/browser.js';
import { startTestServer } from '../helpers/startTestServer.js';

/** How far the page and the widget reach past the viewport's right edge, in CSS pixels (0: nothing overflows). */
function overflow(page: Page): Promise<{ page: number; widget: number; newChat: number }> {
  return page.evaluate(() => {
    const root = document.querySelector('llm-chat')?.shadowRoot;
    const right = (selector: string) => root?.querySelector(selector)?.getBoundingClientRect().right ?? 0;
    const width = document.documentElement.clientWidth;
    const chat = root?.querySelector('.chat') as HTMLElement;
    return {
      page: document.documentElement.scrollWidth - width,
      widget: chat.scrollWidth - chat.clientWidth,
      newChat: Math.max(0, right('button.new') - width),
    };
  });
}

describe.skipIf(!hasChromium)('the widget on narrow screens, and what it says of the model', () => {
  let harness: Awaited<ReturnType<typeof startTestServer>>;
  let browser: BrowserContext;
  beforeAll(async () => {
    harness = await startTestServer({ maxTokens: 1000 }, { engine: new EchoEngine({ tokenDelayMs: 5 }) });
    browser = await launchBrowser();
  });
  afterAll(async () => {
    await browser?.close();
    await harness?.stop();
  });

  for (const width of [320, 380]) {
    it(`fits ${width} px: nothing overflows, New chat is on screen, and it chats`, async () => {
      const page = await browser.newPage();
      await page.setViewportSize({ width, height: 640 });
      await page.goto(harness.httpUrl);
      expect(await page.evaluate(() => innerWidth)).toBe(width);
      const chat = widget(page);
      await chat.waitConnected();
      await chat.send('A long message about **markdown** and `code`, to see that answers wrap: '.repeat(3));
      await chat.waitAnswered();
      await page.locator('llm-chat details.settings summary').click();
      expect(await overflow(page)).toEqual({ page: 0, widget: 0, newChat: 0 });
      await page.locator('llm-chat button.new').click();
      await chat.user.first().waitFor({ state: 'detached' });
      await chat.waitConnected();
      await chat.send('Hello there');
      await chat.waitAnswered();
      expect(await overflow(page)).toEqual({ page: 0, widget: 0, newChat: 0 });
      expect(await axeViolations(page)).toEqual([]);
      await screenshot(page, `narrow-${width}`);
      await page.close();
    });
  }

  it("shows the model's name and a line about it, and caps Max tokens at welcome's limit", async () => {
    const page = await browser.newPage();
    await page.goto(harness.httpUrl);
    const chat = widget(page);
    await chat.waitConnected();
    expect(await page.locator('llm-chat .model-name').textContent()).toBe('echo-double');
    expect(await page.locator('llm-chat .model-line').textContent()).toBe(
      '4,096-token context · answers up to 1,000 tokens',
    );
    await page.locator('llm-chat details.settings summary').click();
    const maxTokens = page.locator('llm-chat input.max-tokens');
    expect(await maxTokens.getAttribute('max')).toBe('1000');
    await maxTokens.fill('100000');
    await maxTokens.blur();
    expect(await maxTokens.inputValue()).toBe('1000');
    expect(await page.locator('llm-chat #max-tokens-hint').textContent()).toBe('at most 1,000');
    await page.close();
  });

  it("takes a one-line description from the page's description attribute", async () => {
    const page = await browser.newPage();
    await page.goto(harness.httpUrl);
    await page.evaluate(() => {
      const element = document.createElement('llm-chat');
      element.setAttribute('description', 'Writes short stories for children.');
      document.querySelector('llm-chat')?.replaceWith(element);
    });
    await widget(page).waitConnected();
    expect(await page.locator('llm-chat .model-line').textContent()).toBe('Writes short stories for children.');
    await page.close();
  });
});
