import { LATENCIES } from '../Recorder.js';
import { chartsOf, type NamedRun } from './charts.js';
import { escapeHtml, formatCount, formatCounts, formatMs } from './format.js';
import { cards, figures, legend, page, settingsTable, table } from './htmlParts.js';
import { comparisonRows, LATENCY_LABELS, type LoadReport } from './LoadReport.js';
import { serverRowsOf, settingsOf } from './settings.js';

/** One run as a self-contained HTML page: uPlot charts inline, no network at view time. */
export function renderHtml(report: LoadReport): string {
  const charts = chartsOf([{ name: '', report }]);
  const body = `<h1>Load report</h1>
<p class="lede">${escapeHtml(describe(report))}</p>
${cards(headline(report))}
<h2>Outcome</h2>
${table(['measure', 'value'], outcomeRows(report))}
<h2>Latency</h2>
${latencyTable(report)}
<h2>Charts</h2>
${figures(charts)}
<div class="columns"><section><h2>Settings of the run</h2>
${settingsTable(['setting', 'value'], settingsOf(report))}</section>
<section><h2>The server at the start</h2>
${settingsTable(['field', 'value'], serverRowsOf(report))}</section></div>
<h2>Legend</h2>
${legend()}`;
  return page(`Load report ${report.startedAt}`, body, charts);
}

/** Two runs on the same charts and side by side in the tables, with B/A ratios. */
export function renderComparisonHtml(a: LoadReport, b: LoadReport): string {
  const runs: NamedRun[] = [
    { name: 'A', report: a },
    { name: 'B', report: b },
  ];
  const charts = chartsOf(runs);
  const body = `<h1>Load comparison</h1>
<p class="lede">A: ${escapeHtml(describe(a))}<br>B: ${escapeHtml(describe(b))}</p>
<h2>A against B</h2>
${table(['measure', 'A', 'B', 'B/A'], comparisonRows(a, b))}
${table(['outcome', 'A', 'B'], sideBySide(outcomeRows(a), outcomeRows(b)))}
<h2>Charts</h2>
${figures(charts)}
<div class="columns"><section><h2>Settings of the runs</h2>
${settingsTable(['setting', 'A', 'B'], sideBySide(settingsOf(a), settingsOf(b)))}</section>
<section><h2>The servers at the start</h2>
${settingsTable(['field', 'A', 'B'], sideBySide(serverRowsOf(a), serverRowsOf(b)))}</section></div>
<h2>Legend</h2>
${legend([
  ['A, B', 'the two runs compared, in the order given to --compare; B/A is B’s value over A’s.'],
  ['highlighted row', 'a setting or server field that differs between A and B.'],
])}`;
  return page(`Load comparison ${a.startedAt} / ${b.startedAt}`, body, charts);
}

function describe(report: LoadReport): string {
  const o = report.options;
  return `${o.scenario} on ${o.target} ${o.url}: ${formatCount(o.connections)} connections for ${report.durationS} s, started ${report.startedAt}.`;
}

function headline(report: LoadReport): Array<[string, string]> {
  const errors = Object.values(report.errors).reduce((sum, n) => sum + n, 0);
  const { ttft, itl } = report.latencies;
  return [
    ['tokens/s', formatCount(report.tokensPerSecond)],
    ['requests', formatCount(report.requests)],
    ['TTFT p50 / p99', `${formatMs(ttft.p50)} / ${formatMs(ttft.p99)}`],
    ['ITL p50 / p99', `${formatMs(itl.p50)} / ${formatMs(itl.p99)}`],
    ['errors', formatCount(errors)],
    ['connection failures', formatCount(report.connectionFailures)],
  ];
}

function outcomeRows(report: LoadReport): Array<[string, string]> {
  const { p50, p10 } = report.streamTokensPerSecond;
  return [
    ['requests', formatCount(report.requests)],
    ['tokens', formatCount(report.tokens)],
    ['tokens/s (all streams)', formatCount(report.tokensPerSecond)],
    ['tokens/s per stream, p50 / p10', `${formatCount(p50)} / ${formatCount(p10)}`],
    ['answers by finish', formatCounts(report.finishes)],
    ['errors by code', formatCounts(report.errors)],
    ['connection failures', formatCount(report.connectionFailures)],
    [
      'resumes after a dropped socket',
      `${formatCount(report.resumes.succeeded)} of ${formatCount(report.resumes.tried)}`,
    ],
    [
      'seconds charted',
      `${formatCount(report.series.length)} (${formatCount(report.partialBuckets ?? 0)} partial left out)`,
    ],
  ];
}

function latencyTable(report: LoadReport): string {
  const rows = LATENCIES.filter((name) => report.latencies[name].count > 0).map((name) => {
    const p = report.latencies[name];
    return [LATENCY_LABELS[name], formatCount(p.count), ...[p.p50, p.p90, p.p99, p.p999, p.max, p.mean].map(formatMs)];
  });
  return table(['latency', 'count', 'p50', 'p90', 'p99', 'p99.9', 'max', 'mean'], rows);
}

/** Rows of A and B joined by their first cell, in A's order then B's extras; "–" where a run lacks one. */
function sideBySide(a: ReadonlyArray<[string, string]>, b: ReadonlyArray<[string, string]>): string[][] {
  const inB = new Map(b);
  const inA = new Map(a);
  const keys = [...new Set([...a.map(([key]) => key), ...b.map(([key]) => key)])];
  return keys.map((key) => [key, inA.get(key) ?? '–', inB.get(key) ?? '–']);
}
