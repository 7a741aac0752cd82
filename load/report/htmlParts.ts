import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { ChartSpec } from './charts.js';
import { escapeHtml } from './format.js';

const require = createRequire(import.meta.url);
const asset = (path: string) => readFileSync(path, 'utf8');

/** uPlot's script and style and our drawing script, read once, inlined in every report. */
const inlined = {
  uplotJs: asset(require.resolve('uplot/dist/uPlot.iife.min.js')),
  uplotCss: asset(require.resolve('uplot/dist/uPlot.min.css')),
  drawJs: asset(new URL('./drawCharts.js', import.meta.url).pathname),
};

const STYLE = `
body{font:14px/1.45 system-ui,sans-serif;margin:0 auto;padding:24px;max-width:1320px;color:#1d2330;background:#fff}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #dde1ea;padding-bottom:4px}
.lede{color:#4a5264;margin:0 0 8px}
table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #d3d8e3;padding:4px 10px;text-align:right;vertical-align:top}
th{background:#f3f5f9;font-weight:600}td:first-child,th:first-child{text-align:left}
table.kv td{text-align:left}tr.differs td{background:#fff6e0}
.cards{display:flex;flex-wrap:wrap;gap:12px;margin:12px 0}.card{border:1px solid #d3d8e3;border-radius:6px;padding:8px 14px;min-width:120px}
.card b{display:block;font-size:20px}.card span{color:#4a5264;font-size:12px}
.charts{display:grid;grid-template-columns:repeat(auto-fill,minmax(560px,1fr));gap:20px}
figure{margin:0;min-width:0}figcaption{font-weight:600;margin:0 0 4px}.plot{width:100%;min-height:300px}
.note{color:#4a5264;font-size:12px;margin:4px 0 0}.columns{display:flex;flex-wrap:wrap;gap:32px;align-items:flex-start}
dl{display:grid;grid-template-columns:max-content 1fr;gap:4px 16px;margin:8px 0}dt{font-weight:600}dd{margin:0}
`;

/** The one self-contained page: uPlot and the chart data inline, nothing fetched at view time. */
export function page(title: string, body: string, charts: readonly ChartSpec[]): string {
  // In a <script>, only "</script" and "<!--" end or confuse it: escape every "<" in the JSON.
  const data = JSON.stringify(charts).replace(/</g, '\\u003c');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title>
<style>${inlined.uplotCss}</style><style>${STYLE}</style></head>
<body>
${body}
<script type="application/json" id="load-report-charts">${data}</script>
<script>${inlined.uplotJs}</script>
<script>${inlined.drawJs}</script>
</body></html>
`;
}

/** A table with a header row; cells are escaped here. */
export function table(head: readonly string[], rows: ReadonlyArray<readonly string[]>, className = ''): string {
  const cells = (row: readonly string[], tag: 'td' | 'th') =>
    row.map((c) => `<${tag}>${escapeHtml(c)}</${tag}>`).join('');
  return `<table${className === '' ? '' : ` class="${className}"`}><thead><tr>${cells(head, 'th')}</tr></thead><tbody>${rows
    .map((row) => `<tr>${cells(row, 'td')}</tr>`)
    .join('')}</tbody></table>`;
}

/** Settings of one or more runs: a row whose values differ between runs is marked. */
export function settingsTable(head: readonly string[], rows: ReadonlyArray<readonly string[]>): string {
  const body = rows
    .map((row) => {
      const differs = row.length > 2 && new Set(row.slice(1)).size > 1;
      return `<tr${differs ? ' class="differs"' : ''}>${row.map((c) => `<td>${escapeHtml(c)}</td>`).join('')}</tr>`;
    })
    .join('');
  return `<table class="kv"><thead><tr>${head.map((c) => `<th>${escapeHtml(c)}</th>`).join('')}</tr></thead><tbody>${body}</tbody></table>`;
}

/** Headline numbers as cards. */
export function cards(items: ReadonlyArray<readonly [string, string]>): string {
  return `<div class="cards">${items.map(([label, value]) => `<div class="card"><b>${escapeHtml(value)}</b><span>${escapeHtml(label)}</span></div>`).join('')}</div>`;
}

/** A figure for each chart, each with its caption, its drawing area and its note. */
export function figures(charts: readonly ChartSpec[]): string {
  return `<div class="charts">${charts
    .map(
      (chart) =>
        `<figure id="chart-${chart.id}"><figcaption>${escapeHtml(chart.title)}</figcaption><div class="plot" data-chart="${chart.id}"></div>${chart.note === undefined ? '' : `<p class="note">${escapeHtml(chart.note)}</p>`}</figure>`,
    )
    .join('')}</div>`;
}

const TERMS: ReadonlyArray<readonly [string, string]> = [
  ['TTFT', 'time to first token: from sending the request to the first token of the answer.'],
  [
    'ITL',
    'inter-token latency: the gap between tokens of one answer (a frame of k tokens after a gap g counts as k gaps of g/k).',
  ],
  ['e2e', 'end to end: from sending the request to the end of its answer (generation.done, or the SSE stream’s end).'],
  ['queue time', 'from sending the request to generation.started (the server gave it a sequence).'],
  ['cancel → ack', 'from sending cancel to the server’s cancel.ack.'],
  ['connect', 'from opening the socket to the server’s welcome.'],
  ['p50, p90, p99, p99.9', 'percentiles: that share of the samples took this long or less; p50 is the median.'],
  ['max', 'the longest sample; no percentile exceeds it.'],
  ['tokens/s', 'tokens received per second over all streams; per stream: one answer’s tokens over its streaming time.'],
  ['answers/s', 'answers that ended (any finish) in that second.'],
  [
    '1/(1−p)',
    'the percentile axis of HdrHistogram: 90% at 10, 99% at 100, 99.9% at 1,000, so the tail is as wide as the median.',
  ],
  [
    'ms, s',
    'milliseconds and seconds; latencies are shown to 3 significant digits, measured by the client (HDR histograms, 1 µs resolution).',
  ],
];

/** The legend of the abbreviations the report uses. */
export function legend(extra: ReadonlyArray<readonly [string, string]> = []): string {
  return `<dl>${[...TERMS, ...extra].map(([term, meaning]) => `<dt>${escapeHtml(term)}</dt><dd>${escapeHtml(meaning)}</dd>`).join('')}</dl>`;
}
