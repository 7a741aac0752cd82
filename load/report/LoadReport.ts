import type { Percentiles } from '../../tooling/latency.js';
import type { LoadOptions } from '../options.js';
import { LATENCIES, type Latency, type Recorder, type SecondSample } from '../Recorder.js';

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
  series: SecondSample[];
};

export function buildReport(options: LoadOptions, recorder: Recorder, startedAt: Date): LoadReport {
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
    series: recorder.series,
  };
}

const LABELS: Record<Latency, string> = {
  ttft: 'time to first token',
  itl: 'inter-token latency',
  e2e: 'end to end',
  queue: 'queue time',
  cancelAck: 'cancel → ack',
  connect: 'connect',
};

/** The summary table for a terminal. */
export function formatSummary(report: LoadReport): string {
  const lines = [
    `${report.options.scenario} on ${report.options.target} ${report.options.url}: ${report.options.connections} connections, ${report.durationS} s`,
    `requests ${report.requests}, tokens ${report.tokens} (${report.tokensPerSecond} tokens/s; per stream p50 ${report.streamTokensPerSecond.p50}, p10 ${report.streamTokensPerSecond.p10})`,
    `finished ${JSON.stringify(report.finishes)}; errors ${JSON.stringify(report.errors)}; connection failures ${report.connectionFailures}; resumes ${report.resumes.succeeded}/${report.resumes.tried}`,
    '',
    '| latency (ms) | count | p50 | p90 | p99 | p99.9 | max |',
    '| --- | --- | --- | --- | --- | --- | --- |',
  ];
  for (const name of LATENCIES) {
    const p = report.latencies[name];
    if (p.count === 0) continue;
    lines.push(`| ${LABELS[name]} | ${p.count} | ${p.p50} | ${p.p90} | ${p.p99} | ${p.p999} | ${p.max} |`);
  }
  return lines.join('\n');
}

/** Two runs side by side, with b/a ratios. */
export function formatComparison(a: LoadReport, b: LoadReport): string {
  const ratio = (x: number, y: number) => (x > 0 ? (y / x).toFixed(2) : '–');
  const lines = ['| measure | A | B | B/A |', '| --- | --- | --- | --- |'];
  lines.push(
    `| tokens/s | ${a.tokensPerSecond} | ${b.tokensPerSecond} | ${ratio(a.tokensPerSecond, b.tokensPerSecond)} |`,
  );
  lines.push(`| requests | ${a.requests} | ${b.requests} | ${ratio(a.requests, b.requests)} |`);
  for (const name of LATENCIES) {
    for (const q of ['p50', 'p99'] as const) {
      const x = a.latencies[name][q];
      const y = b.latencies[name][q];
      if (a.latencies[name].count + b.latencies[name].count === 0) continue;
      lines.push(`| ${LABELS[name]} ${q} ms | ${x} | ${y} | ${ratio(x, y)} |`);
    }
  }
  const errors = (r: LoadReport) => Object.values(r.errors).reduce((s, n) => s + n, 0);
  lines.push(`| errors | ${errors(a)} | ${errors(b)} | |`);
  return `A: ${a.options.target} ${a.options.url} (${a.startedAt})\nB: ${b.options.target} ${b.options.url} (${b.startedAt})\n\n${lines.join('\n')}`;
}
