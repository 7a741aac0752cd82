import type { Percentiles } from '../../tooling/latency.js';
import { LATENCIES, type Latency, type SecondSample } from '../Recorder.js';
import { LATENCY_LABELS, type LoadReport } from './LoadReport.js';

/** One line of a chart. */
export type SeriesSpec = { label: string; color: string; dash?: number[]; axis?: 'y2' };

/**
 * A chart as data for the page's script (load/report/drawCharts.js), which draws it with uPlot.
 * `data` is uPlot's aligned table: the x values, then one array per series, null where a series
 * has no value at that x.
 */
export type ChartSpec = {
  id: string;
  title: string;
  /** 'time': x in seconds since the start; 'percentile': x = 1/(1−p), on a log axis. */
  kind: 'time' | 'percentile';
  xLabel: string;
  yLabel: string;
  /** The unit of y values in the hover legend. */
  yUnit: 'ms' | 'tokens/s';
  y2?: { label: string; unit: string };
  series: SeriesSpec[];
  data: Array<Array<number | null>>;
  note?: string;
};

/** A run to draw, named "A" or "B" in a comparison and "" alone. */
export type NamedRun = { name: string; report: LoadReport };

const RUN_COLORS = ['#1f5fbf', '#d9650b'];
const QUANTILE_COLORS = { p50: '#1f5fbf', p90: '#16794a', p99: '#c0392b' } as const;
const QUANTILE_DASH = { p50: undefined, p90: [2, 3], p99: [7, 4] } as const;
type Quantile = keyof typeof QUANTILE_COLORS;
type Column = { series: SeriesSpec; points: Map<number, number | null> };

/** Every chart of a report, or of two reports on the same charts. */
export function chartsOf(runs: readonly NamedRun[]): ChartSpec[] {
  const latencies = LATENCIES.filter((name) => runs.some(({ report }) => (report.curves[name]?.length ?? 0) > 0));
  return [
    throughputChart(runs),
    overTimeChart(runs, 'ttft', 'TTFT over time'),
    overTimeChart(runs, 'itl', 'ITL over time'),
    ...latencies.map((name) => percentileChart(runs, name)),
  ];
}

function throughputChart(runs: readonly NamedRun[]): ChartSpec {
  const columns = runs.flatMap(({ name, report }, index) => {
    const color = runs.length > 1 ? (RUN_COLORS[index] ?? '#555') : '#1f5fbf';
    const perSecond = (sample: SecondSample, count: number) => count / (sample.spanS ?? 1);
    return [
      column(
        { label: label(name, 'tokens/s'), color },
        report.series.map((s) => [timeX(s), perSecond(s, s.tokens)]),
      ),
      column(
        { label: label(name, 'answers/s'), color: runs.length > 1 ? color : '#7a5195', dash: [2, 3], axis: 'y2' },
        report.series.map((s) => [timeX(s), perSecond(s, s.done)]),
      ),
    ];
  });
  return {
    ...aligned(columns),
    id: 'throughput',
    title: 'Throughput over time',
    kind: 'time',
    xLabel: 'time since start (s)',
    yLabel: 'tokens/s (all streams)',
    yUnit: 'tokens/s',
    y2: { label: 'answers finished/s', unit: 'answers/s' },
    note: 'Each point is one whole second; the last partial second and the drain after the stop are left out.',
  };
}

function overTimeChart(runs: readonly NamedRun[], latency: 'ttft' | 'itl', title: string): ChartSpec {
  const quantiles: Quantile[] = runs.length > 1 ? ['p50', 'p99'] : ['p50', 'p90', 'p99'];
  const columns = runs.flatMap(({ name, report }, index) =>
    quantiles.map((q) =>
      column(
        {
          label: label(name, q),
          color: runs.length > 1 ? (RUN_COLORS[index] ?? '#555') : QUANTILE_COLORS[q],
          ...(QUANTILE_DASH[q] === undefined ? {} : { dash: [...QUANTILE_DASH[q]] }),
        },
        report.series.map((s) => [timeX(s), valueIn(s[latency], q)]),
      ),
    ),
  );
  return {
    ...aligned(columns),
    id: `${latency}-over-time`,
    title,
    kind: 'time',
    xLabel: 'time since start (s)',
    yLabel: `${LATENCY_LABELS[latency]} (ms)`,
    yUnit: 'ms',
    note: 'Percentiles of each second’s samples; a second without samples has no point.',
  };
}

function percentileChart(runs: readonly NamedRun[], latency: Latency): ChartSpec {
  const columns = runs.map(({ name, report }, index) =>
    column(
      { label: name === '' ? LATENCY_LABELS[latency] : name, color: RUN_COLORS[index] ?? '#555' },
      (report.curves[latency] ?? []).filter(([p]) => p < 100).map(([p, ms]) => [percentileX(p), ms]),
    ),
  );
  return {
    ...aligned(columns),
    id: `${latency}-by-percentile`,
    title: `Latency by percentile: ${LATENCY_LABELS[latency]}`,
    kind: 'percentile',
    xLabel: 'percentile (log scale of 1/(1−p))',
    yLabel: `${LATENCY_LABELS[latency]} (ms)`,
    yUnit: 'ms',
    note: 'Each curve ends at its max, where the samples run out: n samples say nothing beyond 1 − 1/n.',
  };
}

const label = (run: string, what: string) => (run === '' ? what : `${run} ${what}`);
const timeX = (sample: SecondSample) => sample.t;
/** HdrHistogram's percentile axis: p = 0.99 sits at 100, p = 0.999 at 1,000. */
const percentileX = (p: number) => Number((1 / (1 - p / 100)).toPrecision(9));
const valueIn = (p: Percentiles, q: Quantile) => (p.count > 0 ? p[q] : null);

function column(series: SeriesSpec, points: Array<[number, number | null]>): Column {
  return { series, points: new Map(points) };
}

/** Lines with different x values on one table: the union of the x values, null where a line has none. */
function aligned(columns: readonly Column[]): Pick<ChartSpec, 'series' | 'data'> {
  const xs = [...new Set(columns.flatMap((c) => [...c.points.keys()]))].sort((a, b) => a - b);
  return {
    series: columns.map((c) => c.series),
    data: [xs, ...columns.map((c) => xs.map((x) => c.points.get(x) ?? null))],
  };
}
