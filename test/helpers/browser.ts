import { existsSync, mkdirSync, mkdtempSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type BrowserContext, chromium, type Page } from 'playwright-core';

export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
export const hasChromium = existsSync(CHROMIUM_PATH);
export const SCREENSHOT_DIR = join(import.meta.dirname, '..', '..', 'test-results', 'screenshots');

/** Debian's Chromium, headless, with a fresh profile and no background traffic. */
export async function launchBrowser(): Promise<BrowserContext> {
  return chromium.launchPersistentContext(mkdtempSync(join(tmpdir(), 'llm-chat-browser-')), {
    executablePath: CHROMIUM_PATH,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

const AXE_PATH = createRequire(import.meta.url).resolve('axe-core/axe.min.js');

/**
 * axe-core's violations on the page as it is now (open shadow roots included, so the widget's
 * inside too), one line each: rule, what it asks, where.
 */
export async function axeViolations(page: Page): Promise<string[]> {
  if (!(await page.evaluate(() => 'axe' in window))) await page.addScriptTag({ path: AXE_PATH });
  return page.evaluate(async () => {
    const { axe } = window as unknown as { axe: typeof import('axe-core') };
    const { violations } = await axe.run(document, { resultTypes: ['violations'] });
    return violations.map(
      (violation) =>
        `${violation.id}: ${violation.help} (${violation.nodes.map((node) => JSON.stringify(node.target)).join(', ')})`,
    );
  });
}

export async function screenshot(page: Page, name: string): Promise<void> {
  mkdirSync(SCREENSHOT_DIR, { recursive: true });
  await page.screenshot({ path: join(SCREENSHOT_DIR, `${name}.png`) });
}

/** The widget, driven as a person would. */
export function widget(page: Page) {
  const chat = page.locator('llm-chat');
  return {
    state: chat.locator('.state'),
    status: chat.locator('.status'),
    assistant: chat.locator('.msg.assistant'),
    user: chat.locator('.msg.user'),
    async waitConnected() {
      await chat.locator('.state[data-state="open"]').waitFor();
      await chat.locator('button.send:not([disabled])').waitFor();
    },
    async settings(temperature: number, maxTokens: number) {
      if ((await chat.locator('details.settings').getAttribute('open')) === null) await chat.locator('summary').click();
      await chat.locator('input.temperature').fill(String(temperature));
      await chat.locator('input.max-tokens').fill(String(maxTokens));
    },
    async send(text: string) {
      await chat.locator('textarea').fill(text);
      await chat.locator('textarea').press('Enter');
    },
    /** Waits until the last answer has ended (the status then shows its token count). */
    async waitAnswered() {
      await chat.locator('button.stop[disabled]').waitFor();
      await page.waitForFunction(() =>
        /tokens/.test(document.querySelector('llm-chat')?.shadowRoot?.querySelector('.status')?.textContent ?? ''),
      );
    },
    async lastAnswerText() {
      return page.evaluate(() => {
        const messages = document.querySelector('llm-chat')?.shadowRoot?.querySelectorAll('.msg.assistant');
        const copy = messages?.[messages.length - 1]?.cloneNode(true) as HTMLElement | undefined;
        for (const extra of copy?.querySelectorAll('.note, details, .code-bar') ?? []) extra.remove();
        return (copy?.textContent ?? '').trim();
      });
    },
  };
}
