import type { BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EchoEngine } from '../doubles/EchoEngine.js';
import { axeViolations, hasChromium, launchBrowser, screenshot, widget } from '../helpers/browser.js';
import { startTestServer } from '../helpers/startTestServer.js';

const CODE = 'const answer = 42;\nconsole.log(answer);';

/** The echo double answers with the message itself, a word a token: a Markdown answer streamed word by word. */
const MARKDOWN = `# Plan

Some **bold** words, a [link](https://example.com/docs) and a [trap](javascript:alert(1)).

- first
- second
- third

\`\`\`js
${CODE}
\`\`\`

<img src=x onerror="window.pwned=1"> and <script>window.pwned=2</script> stay text.

1. one
2. two`;

describe.skipIf(!hasChromium)('answers as Markdown in the widget', () => {
  let harness: Awaited<ReturnType<typeof startTestServer>>;
  let browser: BrowserContext;
  let page: Page;
  /** The answer's HTML as it was rendered while streaming. */
  let streamed = '';
  beforeAll(async () => {
    harness = await startTestServer({}, { engine: new EchoEngine({ tokenDelayMs: 15 }) });
    browser = await launchBrowser();
    await browser.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: harness.httpUrl });
  });
  afterAll(async () => {
    await browser?.close();
    await harness?.stop();
  });

  it('renders a streamed answer block by block, never re-rendering a finished block, and sanitised', async () => {
    page = await browser.newPage();
    await page.goto(harness.httpUrl);
    const chat = widget(page);
    await chat.waitConnected();
    // Watches every answer's Markdown container: blocks added, and blocks removed other than the live one.
    await page.evaluate(() => {
      const log = document.querySelector('llm-chat')?.shadowRoot?.querySelector('.log') as HTMLElement;
      const seen = { added: 0, removed: 0 };
      Object.assign(window, { blocks: seen });
      new MutationObserver((mutations) => {
        for (const mutation of mutations) {
          if (!(mutation.target as Element).classList?.contains('md')) continue;
          seen.added += [...mutation.addedNodes].filter((node) => node.nodeType === Node.ELEMENT_NODE).length;
          seen.removed += [...mutation.removedNodes].filter(
            (node) => !(node as Element).classList?.contains('md-live'),
          ).length;
        }
      }).observe(log, { childList: true, subtree: true });
    });
    await chat.send(MARKDOWN);
    await chat.waitAnswered();
    const answer = chat.assistant.last();

    expect(await answer.locator('h1').textContent()).toBe('Plan');
    expect(await answer.locator('strong').textContent()).toBe('bold');
    expect(await answer.locator('ul > li').allTextContents()).toEqual(['first', 'second', 'third']);
    expect(await answer.locator('ol > li').allTextContents()).toEqual(['one', 'two']);
    const link = answer.locator('a[href="https://example.com/docs"]');
    expect(await link.getAttribute('target')).toBe('_blank');
    expect(await link.getAttribute('rel')).toBe('noopener noreferrer');
    expect(await answer.locator('.code-block pre code').textContent()).toBe(`${CODE}\n`);
    expect(await answer.locator('.code-language').textContent()).toBe('js');
    expect(await answer.locator('img, script, [href^="javascript"]').count()).toBe(0);
    expect(await answer.textContent()).toContain('<img src=x onerror="window.pwned=1">');
    expect(await page.evaluate(() => 'pwned' in window)).toBe(false);

    // Six blocks (heading, paragraph, list, code, paragraph, list), each added once and none removed.
    const blocks = await page.evaluate(
      () => (window as unknown as { blocks: { added: number; removed: number } }).blocks,
    );
    expect(blocks.removed).toBe(0);
    expect(blocks.added).toBe(6);

    streamed = await answer.locator('.md').innerHTML();
    await answer.locator('button.copy').click();
    await answer.locator('button.copy', { hasText: 'Copied' }).waitFor();
    expect(await page.evaluate(() => navigator.clipboard.readText())).toBe(`${CODE}\n`);
    await screenshot(page, 'markdown-code');
  });

  it('renders the same answer restored after a reload exactly as it streamed', async () => {
    await page.reload();
    const chat = widget(page);
    await chat.waitConnected();
    await chat.assistant.last().waitFor();
    expect(await chat.assistant.last().locator('.md').innerHTML()).toBe(streamed);
  });

  it('has no accessibility violations (axe-core) in the light and the dark theme', async () => {
    expect(await axeViolations(page)).toEqual([]);
    await page.emulateMedia({ colorScheme: 'dark' });
    expect(await page.evaluate(() => matchMedia('(prefers-color-scheme: dark)').matches)).toBe(true);
    const background = await page
      .locator('llm-chat .chat')
      .evaluate((element) => getComputedStyle(element).backgroundColor);
    expect(background).toBe('rgb(22, 24, 29)');
    expect(await axeViolations(page)).toEqual([]);
    await screenshot(page, 'dark-theme');
    await page.emulateMedia({ colorScheme: 'light' });
  });

  it('takes colours from the embedding page through CSS custom properties', async () => {
    await page
      .locator('llm-chat')
      .evaluate((element) => element.style.setProperty('--llm-chat-user-bg', 'rgb(0, 110, 80)'));
    const bubble = await widget(page)
      .user.last()
      .evaluate((element) => getComputedStyle(element).backgroundColor);
    expect(bubble).toBe('rgb(0, 110, 80)');
    await page.close();
  });
});
