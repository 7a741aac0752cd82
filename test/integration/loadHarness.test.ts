import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LoadReport } from '../../load/report/LoadReport.js';
import { startTestServer } from '../helpers/startTestServer.js';

const run = promisify(execFile);

describe('the load harness', () => {
  let harness: Awaited<ReturnType<typeof startTestServer>>;
  beforeAll(async () => {
    harness = await startTestServer({ maxConcurrent: 4 });
  });
  afterAll(() => harness.stop());

  async function load(args: string[]) {
    const dir = mkdtempSync(join(tmpdir(), 'load-'));
    const json = join(dir, 'report.json');
    const html = join(dir, 'report.html');
    const { stdout } = await run(
      process.execPath,
      ['--import', 'tsx', 'load/cli.ts', ...args, '--json', json, '--html', html],
      { timeout: 30_000 },
    );
    return { stdout, report: JSON.parse(readFileSync(json, 'utf8')) as LoadReport, html: readFileSync(html, 'utf8') };
  }

  it('runs a mixed WebSocket load for a bounded time and reports latencies, finishes, resumes and errors', async () => {
    const { stdout, report, html } = await load([
      '--url',
      harness.wsUrl,
      '--connections',
      '6',
      '--duration',
      '3s',
      '--scenario',
      'mixed',
      '--mix',
      'chat=2,cancel=1,reconnect=1',
      '--max-tokens',
      '24',
    ]);
    expect(report.durationS).toBeLessThan(8);
    expect(report.requests).toBeGreaterThan(5);
    expect(report.tokens).toBeGreaterThan(50);
    expect(report.latencies.ttft.count).toBeGreaterThan(0);
    expect(report.latencies.itl.p50).toBeGreaterThan(0);
    expect(report.connectionFailures).toBe(0);
    expect(report.errors).toEqual({});
    expect(report.resumes.tried).toBeGreaterThan(0);
    expect(report.resumes.succeeded).toBe(report.resumes.tried);
    expect(report.series.length).toBeGreaterThanOrEqual(2);
    expect(report.series.every((second) => second.full && second.spanS >= 0.5)).toBe(true);
    expect(report.partialBuckets).toBeGreaterThanOrEqual(1);
    for (const p of Object.values(report.latencies).filter((p) => p.count > 0)) {
      expect([p.p50, p.p90, p.p99, p.p999].every((value) => value <= p.max)).toBe(true);
    }
    for (const curve of Object.values(report.curves).filter((curve) => curve.length > 0)) {
      expect(curve.every(([p, ms], i) => p < 100 && ms >= (curve[i - 1]?.[1] ?? 0))).toBe(true);
    }
    expect(report.server?.welcome?.model.name).toBeTruthy();
    expect(report.server?.readyz?.status).toBe(200);
    expect(report.server?.problems).toEqual([]);
    expect(stdout).toContain('| time to first token |');
    expect(stdout).not.toContain('{');
    // One self-contained file: uPlot inline, nothing fetched at view time.
    expect(html).toContain('uPlot');
    expect(html).not.toMatch(/<script[^>]+src=|<link|@import|url\(http/);
  });

  it('acts like a bot: one connection running many sessions at once, every answer its own', async () => {
    const { report } = await load([
      '--url',
      harness.wsUrl,
      '--connections',
      '1',
      '--duration',
      '2s',
      '--scenario',
      'bot',
      '--bot-sessions',
      '6',
      '--turns',
      '2',
      '--max-tokens',
      '16',
    ]);
    expect(report.requests).toBeGreaterThanOrEqual(6);
    expect(report.requests % 6).toBe(0);
    expect(report.errors).toEqual({});
    expect(report.connectionFailures).toBe(0);
    expect(Object.values(report.finishes).reduce((sum, count) => sum + count, 0)).toBe(report.requests);
  });

  it('drives the OpenAI-compatible endpoint with openai-sse, and compares two runs', async () => {
    const sse = await load([
      '--url',
      `${harness.httpUrl}/v1`,
      '--target',
      'openai-sse',
      '--connections',
      '3',
      '--duration',
      '2s',
      '--max-tokens',
      '16',
    ]);
    expect(sse.report.requests).toBeGreaterThan(2);
    expect(sse.report.latencies.ttft.count).toBeGreaterThan(0);
    const dir = mkdtempSync(join(tmpdir(), 'cmp-'));
    const { writeFileSync } = await import('node:fs');
    writeFileSync(join(dir, 'a.json'), JSON.stringify(sse.report));
    writeFileSync(join(dir, 'b.json'), JSON.stringify(sse.report));
    const { stdout } = await run(process.execPath, [
      '--import',
      'tsx',
      'load/cli.ts',
      '--compare',
      join(dir, 'a.json'),
      join(dir, 'b.json'),
      '--html',
      join(dir, 'compare.html'),
    ]);
    expect(readFileSync(join(dir, 'compare.html'), 'utf8')).toContain('Load comparison');
    expect(sse.report.server?.models?.status).toBe(200);
    expect(stdout).toMatch(/\| tokens\/s \| [\d,]+ \| [\d,]+ \| 1\.00 \|/);
  });
});
