import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LoadOptions } from '../../load/options.js';
import { probeServer } from '../../load/probeServer.js';
import { buildReport, type LoadReport } from '../../load/report/LoadReport.js';
import { renderComparisonHtml, renderHtml } from '../../load/report/renderHtml.js';
import { runLoad } from '../../load/runLoad.js';
import { hasChromium, launchBrowser, SCREENSHOT_DIR } from '../helpers/browser.js';
import { startTestServer } from '../helpers/startTestServer.js';

const PERCENTILE_TICKS = ['50%', '90%', '99%', '99.9%', '99.99%'];

/** A real short run against the test server, as `npm run load` makes it. */
async function measure(url: string, connections: number): Promise<LoadReport> {
  const options = LoadOptions.parse({
    url,
    connections,
    duration: '3s',
    scenario: 'mixed',
    mix: 'chat=2,cancel=1',
    maxTokens: 24,
  });
  const server = await probeServer(options);
  const startedAt = new Date();
  const recorder = await runLoad(options).done;
  return buildReport(options, recorder, startedAt, server);
}

/** Opens a report file, recording console errors and every string drawn on a canvas (axis labels, ticks). */
async function open(browser: BrowserContext, html: string, name: string) {
  const dir = mkdtempSync(join(tmpdir(), 'load-report-'));
  const file = join(dir, `${name}.html`);
  writeFileSync(file, html);
  const page = await browser.newPage();
  await page.setViewportSize({ width: 1280, height: 900 });
  const problems: string[] = [];
  page.on('console', (message) => {
    if (message.type() === 'error') problems.push(message.text());
  });
  page.on('pageerror', (error) => problems.push(error.message));
  page.on('request', (request) => {
    if (!request.url().startsWith('file:')) problems.push(`fetched ${request.url()}`);
  });
  await page.addInitScript(() => {
    const drawn: string[] = [];
    (window as unknown as { drawnText: string[] }).drawnText = drawn;
    const fillText = CanvasRenderingContext2D.prototype.fillText;
    CanvasRenderingContext2D.prototype.fillText = function (text, ...rest) {
      drawn.push(String(text));
      return fillText.call(this, text, ...rest);
    };
  });
  await page.goto(pathToFileURL(file).href);
  await page.locator('.uplot').first().waitFor();
  return { page, problems, dir };
}

const drawnText = (page: Page) => page.evaluate(() => (window as unknown as { drawnText: string[] }).drawnText);

/** Pixels of a series colour on a chart's canvas: a drawn line has hundreds. */
function pixelsOf(page: Page, chartId: string, rgb: [number, number, number]): Promise<number> {
  return page.evaluate(
    ([id, [r, g, b]]) => {
      const canvas = document.querySelector<HTMLCanvasElement>(`[data-chart="${id}"] canvas`);
      const context = canvas?.getContext('2d');
      if (!canvas || !context) return 0;
      const { data } = context.getImageData(0, 0, canvas.width, canvas.height);
      let count = 0;
      for (let i = 0; i < data.length; i += 4) {
        const near = Math.abs((data[i] ?? 0) - r) + Math.abs((data[i + 1] ?? 0) - g) + Math.abs((data[i + 2] ?? 0) - b);
        if (near < 40 && (data[i + 3] ?? 0) > 200) count++;
      }
      return count;
    },
    [chartId, rgb] as const,
  );
}

/** The settings and server tables as {first cell: other cells}. */
const keyValues = (page: Page, heading: string) =>
  page.evaluate((text) => {
    const section = [...document.querySelectorAll('section')].find((s) => s.querySelector('h2')?.textContent === text);
    const rows = [...(section?.querySelectorAll('tbody tr') ?? [])].map((row) =>
      [...row.querySelectorAll('td')].map((cell) => cell.textContent ?? ''),
    );
    return Object.fromEntries(rows.map(([key, ...values]) => [key, values.join(' | ')]));
  }, heading);

const BLUE: [number, number, number] = [0x1f, 0x5f, 0xbf];
const ORANGE: [number, number, number] = [0xd9, 0x65, 0x0b];

describe.skipIf(!hasChromium)('the load report in Chromium', () => {
  let harness: Awaited<ReturnType<typeof startTestServer>>;
  let browser: BrowserContext;
  let a: LoadReport;
  let b: LoadReport;
  const dirs: string[] = [];

  beforeAll(async () => {
    harness = await startTestServer({ maxConcurrent: 4 });
    browser = await launchBrowser();
    a = await measure(harness.wsUrl, 4);
    b = await measure(harness.wsUrl, 2);
  }, 60_000);
  afterAll(async () => {
    await browser?.close();
    await harness?.stop();
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });

  it('draws every chart with labelled axes, the log percentile axis, the settings and the server, offline', async () => {
    const { page, problems, dir } = await open(browser, renderHtml(a), 'load-report');
    dirs.push(dir);
    const figures = await page.locator('figure').count();
    expect(figures).toBeGreaterThanOrEqual(5);
    expect(await page.locator('figure canvas').count()).toBe(figures);
    expect(await pixelsOf(page, 'throughput', BLUE)).toBeGreaterThan(100);
    expect(await pixelsOf(page, 'ttft-by-percentile', BLUE)).toBeGreaterThan(100);

    const text = await drawnText(page);
    for (const label of [
      'time since start (s)',
      'tokens/s (all streams)',
      'answers finished/s',
      'time to first token (ms)',
      'inter-token latency (ms)',
      'percentile (log scale of 1/(1−p))',
      ...PERCENTILE_TICKS,
    ]) {
      expect(text, label).toContain(label);
    }

    const settings = await keyValues(page, 'Settings of the run');
    expect(settings).toMatchObject({
      connections: '4',
      scenario: 'mixed',
      mix: 'chat 2, cancel 1',
      URL: harness.wsUrl,
    });
    expect(settings['max tokens per answer']).toBe('24');
    const server = await keyValues(page, 'The server at the start');
    expect(server['welcome model.name']).toBe(a.server?.welcome?.model.name);
    expect(server['welcome limits.maxTokens']).toMatch(/^[\d,]+$/);
    expect(server['/readyz HTTP status']).toBe('200');
    expect(server['/readyz status']).toBe('ready');

    const legend = await page.locator('dt').allTextContents();
    expect(legend).toEqual(expect.arrayContaining(['TTFT', 'ITL', 'e2e', 'p50, p90, p99, p99.9']));
    const prose = (await page.locator('body > :not(script)').allTextContents()).join('\n');
    expect(prose).not.toMatch(/[{}]/);
    // Three significant digits, cell by cell (a page's text runs cells together): "0.882 ms" is
    // right, "12.345 ms" is not.
    const cells = await page.locator('td, p, li, dd').allTextContents();
    expect(cells.filter((cell) => /(^|[^\d,.])[1-9]\d*\.\d{3,} ms/.test(cell))).toEqual([]);
    expect(problems).toEqual([]);
    mkdirSync(SCREENSHOT_DIR, { recursive: true });
    await page.screenshot({ path: join(SCREENSHOT_DIR, 'load-report.png'), fullPage: true });
    await page.close();
  });

  it('draws two runs on the same charts for --compare, marking settings that differ', async () => {
    const { page, problems, dir } = await open(browser, renderComparisonHtml(a, b), 'load-compare');
    dirs.push(dir);
    for (const chart of ['throughput', 'ttft-by-percentile']) {
      expect(await pixelsOf(page, chart, BLUE), `${chart}, A`).toBeGreaterThan(100);
      expect(await pixelsOf(page, chart, ORANGE), `${chart}, B`).toBeGreaterThan(100);
    }
    const series = await page.locator('#chart-ttft-over-time .u-legend .u-label').allTextContents();
    expect(series).toEqual(expect.arrayContaining(['A p50', 'A p99', 'B p50', 'B p99']));
    expect(await drawnText(page)).toEqual(expect.arrayContaining(PERCENTILE_TICKS));
    const settings = await keyValues(page, 'Settings of the runs');
    expect(settings.connections).toBe('4 | 2');
    expect(await page.locator('tr.differs', { hasText: 'connections' }).count()).toBe(1);
    expect(await page.locator('table', { hasText: 'B/A' }).locator('td', { hasText: 'tokens/s' }).count()).toBe(1);
    expect(problems).toEqual([]);
    mkdirSync(SCREENSHOT_DIR, { recursive: true });
    await page.screenshot({ path: join(SCREENSHOT_DIR, 'load-compare.png'), fullPage: true });
    await page.close();
  });
});
