import type { LoadReport } from './LoadReport.js';

type Line = { label: string; color: string; points: Array<[number, number]> };

/** A self-contained HTML report: no scripts, no network, inline SVG charts. */
export function renderHtml(report: LoadReport): string {
  const s = report.series;
  const charts = [
    chart('Throughput over time (tokens/s)', 'seconds', [
      { label: 'tokens/s', color: '#2d5bd7', points: s.map((x) => [x.t, x.tokens]) },
    ]),
    chart('Time to first token over time (ms)', 'seconds', [
      { label: 'p50', color: '#2d5bd7', points: s.map((x) => [x.t, x.ttft.p50]) },
      { label: 'p99', color: '#c0392b', points: s.map((x) => [x.t, x.ttft.p99]) },
    ]),
    chart('Inter-token latency over time (ms)', 'seconds', [
      { label: 'p50', color: '#2d5bd7', points: s.map((x) => [x.t, x.itl.p50]) },
      { label: 'p99', color: '#c0392b', points: s.map((x) => [x.t, x.itl.p99]) },
    ]),
    ...(['ttft', 'itl', 'e2e', 'cancelAck'] as const)
      .filter((name) => report.curves[name].length > 0)
      .map((name) =>
        chart(`Latency by percentile: ${name} (ms)`, 'percentile', [
          { label: name, color: '#16794a', points: report.curves[name] },
        ]),
      ),
  ];
  const rows = Object.entries(report.latencies)
    .filter(([, p]) => p.count > 0)
    .map(
      ([name, p]) =>
        `<tr><td>${name}</td><td>${p.count}</td><td>${p.p50}</td><td>${p.p90}</td><td>${p.p99}</td><td>${p.p999}</td><td>${p.max}</td></tr>`,
    )
    .join('');
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Load report ${escapeHtml(report.startedAt)}</title>
<style>body{font:14px system-ui,sans-serif;margin:24px;color:#1d2330}table{border-collapse:collapse}td,th{border:1px solid #ccd;padding:4px 8px;text-align:right}
td:first-child,th:first-child{text-align:left}.charts{display:flex;flex-wrap:wrap;gap:16px}figure{margin:0}figcaption{font-weight:600;margin:4px 0}</style></head><body>
<h1>Load report</h1>
<p>${escapeHtml(report.options.scenario)} on ${escapeHtml(report.options.target)} ${escapeHtml(report.options.url)}: ${report.options.connections} connections for ${report.durationS} s, started ${escapeHtml(report.startedAt)}.</p>
<p>${report.requests} requests, ${report.tokens} tokens (${report.tokensPerSecond} tokens/s); finished ${escapeHtml(JSON.stringify(report.finishes))}; errors ${escapeHtml(JSON.stringify(report.errors))}; connection failures ${report.connectionFailures}; resumes ${report.resumes.succeeded}/${report.resumes.tried}.</p>
<table><tr><th>latency (ms)</th><th>count</th><th>p50</th><th>p90</th><th>p99</th><th>p99.9</th><th>max</th></tr>${rows}</table>
<div class="charts">${charts.join('')}</div></body></html>`;
}

function chart(title: string, xLabel: string, lines: Line[]): string {
  const width = 460;
  const height = 220;
  const pad = 40;
  const all = lines.flatMap((line) => line.points);
  const maxX = Math.max(1, ...all.map(([x]) => x));
  const maxY = Math.max(1e-9, ...all.map(([, y]) => y));
  const sx = (x: number) => pad + (x / maxX) * (width - pad - 10);
  const sy = (y: number) => height - pad + 10 - (y / maxY) * (height - pad - 10);
  const paths = lines
    .map(
      (line) =>
        `<polyline fill="none" stroke="${line.color}" stroke-width="1.5" points="${line.points.map(([x, y]) => `${sx(x).toFixed(1)},${sy(y).toFixed(1)}`).join(' ')}"><title>${escapeHtml(line.label)}</title></polyline>`,
    )
    .join('');
  const legend = lines
    .map((line, i) => `<text x="${pad + 8 + i * 60}" y="14" fill="${line.color}">${escapeHtml(line.label)}</text>`)
    .join('');
  return `<figure><figcaption>${escapeHtml(title)}</figcaption><svg width="${width}" height="${height}" role="img" aria-label="${escapeHtml(title)}">
<line x1="${pad}" y1="${height - pad + 10}" x2="${width - 10}" y2="${height - pad + 10}" stroke="#999"/><line x1="${pad}" y1="10" x2="${pad}" y2="${height - pad + 10}" stroke="#999"/>
<text x="${pad - 4}" y="16" text-anchor="end" font-size="11">${formatNumber(maxY)}</text><text x="${pad - 4}" y="${height - pad + 10}" text-anchor="end" font-size="11">0</text>
<text x="${width - 10}" y="${height - 8}" text-anchor="end" font-size="11">${escapeHtml(xLabel)} ${formatNumber(maxX)}</text>${paths}${legend}</svg></figure>`;
}

function formatNumber(value: number): string {
  return value >= 100 ? value.toFixed(0) : value.toPrecision(3);
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
