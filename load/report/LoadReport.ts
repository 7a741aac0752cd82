import { availableParallelism, cpus, platform, release } from 'node:os';
import type { Percentiles } from '../../tooling/latency.js';
import type { LoadOptions } from '../options.js';
import type { ServerInfo } from '../probeServer.js';
import { LATENCIES, type Latency, type Recorder, type SecondSample } from '../Recorder.js';
import { formatCount, formatCounts, formatMs, formatRatio } from './format.js';

/** Where the harness ran: its own machine bounds what it can measure. */
export type HarnessInfo = { node: string; os: string; cpus: number; cpuModel: string };

/** Everything one run measured, as written to the JSON file and read back by --compare. */
export type LoadReport = {
  options: Omit<LoadOptions, 'apiKey'>;
  startedAt: string;
  durationS: number;
  requests: number;
  tokens: number;
  tokensPerSecond: number;
  streamTokensPerSecond: { p50: number; p10: number };
  finishes: Record<string, number>;
  errors: Record<string, number>;
  connectionFailures: number;
  resumes: { tried: number; succeeded: number };
  latencies: Record<Latency, Percentiles>;
  curves: Record<Latency, Array<[number, number]>>;
  /** Whole seconds of load only: the last partial second and the drain after the stop are left out. */
  series: SecondSample[];
  /** How many time buckets were left out of `series` (partial, or after the load stopped). */
  partialBuckets?: number;
  /** The server's `welcome` and `/readyz`, fetched when the run started (absent in older reports). */
  server?: ServerInfo;
  harness?: HarnessInfo;
};

export function buildReport(
  options: LoadOptions,
  recorder: Recorder,
  startedAt: Date,
  server?: ServerInfo,
): LoadReport {
  const durationS = (performance.now() - recorder.startedAt) / 1000;
  const { apiKey: _secret, ...safeOptions } = options;
  const rates = [...recorder.streamRates].sort((a, b) => a - b);
  const at = (q: number) => Math.round(rates[Math.floor(q * (rates.length - 1))] ?? 0);
  return {
    options: safeOptions,
    startedAt: startedAt.toISOString(),
    durationS: Math.round(durationS * 10) / 10,
    requests: recorder.requests,
    tokens: recorder.tokens,
    tokensPerSecond: Math.round(recorder.tokens / Math.max(0.001, durationS)),
    streamTokensPerSecond: { p50: at(0.5), p10: at(0.1) },
    finishes: Object.fromEntries(recorder.finishes),
    errors: Object.fromEntries(recorder.errors),
    connectionFailures: recorder.connectionFailures,
    resumes: { ...recorder.resumes },
    latencies: Object.fromEntries(LATENCIES.map((name) => [name, recorder.percentiles(name)])) as Record<
      Latency,
      Percentiles
    >,
    curves: Object.fromEntries(LATENCIES.map((name) => [name, recorder.curve(name)])) as Record<
      Latency,
      Array<[number, number]>
    >,
    series: recorder.series.filter((sample) => sample.full),
    partialBuckets: recorder.series.filter((sample) => !sample.full).length,
    ...(server === undefined ? {} : { server }),
    harness: {
      node: process.version,
      os: `${platform()} ${release()}`,
      cpus: availableParallelism(),
      cpuModel: cpus()[0]?.model.trim() ?? 'unknown',
    },
  };
}

/** What each latency measures, for tables and charts. */
export const LATENCY_LABELS: Record<Latency, string> = {
  ttft: 'time to first token',
  itl: 'inter-token latency',
  e2e: 'end to end',
  queue: 'queue time',
  cancelAck: 'cancel → ack',
  connect: 'connect',
};

/** The summary table for a terminal. */
export function formatSummary(report: LoadReport): string {
  const { options } = report;
  const lines = [
    `${options.scenario} on ${options.target} ${options.url}: ${options.connections} connections, ${report.durationS} s`,
    `requests ${formatCount(report.requests)}, tokens ${formatCount(report.tokens)} (${formatCount(report.tokensPerSecond)} tokens/s; per stream p50 ${formatCount(report.streamTokensPerSecond.p50)}, p10 ${formatCount(report.streamTokensPerSecond.p10)})`,
    `finished ${formatCounts(report.finishes)}; errors ${formatCounts(report.errors)}; connection failures ${report.connectionFailures}; resumes ${report.resumes.succeeded}/${report.resumes.tried}`,
    '',
    '| latency | count | p50 | p90 | p99 | p99.9 | max |',
    '| --- | --- | --- | --- | --- | --- | --- |',
  ];
  for (const name of LATENCIES) {
    const p = report.latencies[name];
    if (p.count === 0) continue;
    const cells = [p.p50, p.p90, p.p99, p.p999, p.max].map(formatMs).join(' | ');
    lines.push(`| ${LATENCY_LABELS[name]} | ${formatCount(p.count)} | ${cells} |`);
  }
  return lines.join('\n');
}

/** The rows of a comparison of two runs: measure, A, B, B/A. */
export function comparisonRows(a: LoadReport, b: LoadReport): Array<[string, string, string, string]> {
  const rows: Array<[string, string, string, string]> = [
    [
      'tokens/s',
      formatCount(a.tokensPerSecond),
      formatCount(b.tokensPerSecond),
      formatRatio(a.tokensPerSecond, b.tokensPerSecond),
    ],
    ['requests', formatCount(a.requests), formatCount(b.requests), formatRatio(a.requests, b.requests)],
  ];
  for (const name of LATENCIES) {
    if (a.latencies[name].count + b.latencies[name].count === 0) continue;
    for (const [q, label] of [
      ['p50', 'p50'],
      ['p99', 'p99'],
      ['p999', 'p99.9'],
    ] as const) {
      const x = a.latencies[name][q];
      const y = b.latencies[name][q];
      rows.push([`${LATENCY_LABELS[name]} ${label}`, formatMs(x), formatMs(y), formatRatio(x, y)]);
    }
  }
  const errors = (r: LoadReport) => Object.values(r.errors).reduce((sum, n) => sum + n, 0);
  rows.push(['errors', formatCount(errors(a)), formatCount(errors(b)), formatRatio(errors(a), errors(b))]);
  rows.push(['connection failures', formatCount(a.connectionFailures), formatCount(b.connectionFailures), '']);
  return rows;
}

/** Two runs side by side, with b/a ratios. */
export function formatComparison(a: LoadReport, b: LoadReport): string {
  const lines = ['| measure | A | B | B/A |', '| --- | --- | --- | --- |'];
  for (const row of comparisonRows(a, b)) lines.push(`| ${row.join(' | ')} |`);
  return `A: ${a.options.target} ${a.options.url} (${a.startedAt})\nB: ${b.options.target} ${b.options.url} (${b.startedAt})\n\n${lines.join('\n')}`;
}
