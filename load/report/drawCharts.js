/*
 * Draws the load report's charts with uPlot, which the page inlines before this script. Reads the
 * chart specs (load/report/charts.ts, ChartSpec) from the JSON in #load-report-charts and draws
 * each into its [data-chart] element. Plain JavaScript: it runs as is in the report's page.
 */
(() => {
  const source = document.getElementById('load-report-charts');
  if (source === null) return;
  const specs = JSON.parse(source.textContent ?? '[]');
  const threeDigits = new Intl.NumberFormat('en-US', { maximumSignificantDigits: 3 });
  const whole = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });
  const grid = { show: true, stroke: '#dde1ea', width: 1 };
  const ticks = { show: true, stroke: '#9aa1b1', width: 1, size: 5 };
  const font = '12px system-ui, sans-serif';
  const labelFont = '600 12px system-ui, sans-serif';

  /** 3 significant digits, whole numbers from 1,000 up (tick labels and hover values). */
  const number = (value) =>
    value === null || value === undefined
      ? '–'
      : Math.abs(value) >= 1000
        ? whole.format(value)
        : threeDigits.format(value);
  /** x = 1/(1−p) back to "99.9%". */
  const percentOf = (x) => (x === null || x === undefined ? '' : `${Number((100 * (1 - 1 / x)).toFixed(4))}%`);

  /** Ticks of the percentile axis: 0%, 50%, then one per nine (90%, 99%, 99.9%, …). */
  function nines(min, max) {
    const splits = [1, 2].filter((x) => x >= min && x <= max);
    for (let x = 10; x <= max * 1.000001; x *= 10) splits.push(x);
    return splits;
  }

  /** A y range from zero to a round number above the data. */
  const fromZero = (_u, _min, max) => [0, uPlot.rangeNum(0, max > 0 ? max : 1, 0.1, true)[1]];

  function xAxis(spec) {
    const axis = { label: spec.xLabel, labelFont, font, grid, ticks, size: 32, labelSize: 22 };
    // Whole seconds on a time axis, even for a run of two.
    if (spec.kind !== 'percentile')
      return { ...axis, incrs: [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600] };
    return {
      ...axis,
      splits: (_u, _i, min, max) => nines(min, max),
      // uPlot's log axis blanks labels between decades; every tick here is one to read.
      filter: (_u, splits) => splits,
      values: (_u, splits) => splits.map(percentOf),
    };
  }

  function yAxis(label, side) {
    return {
      label,
      labelFont,
      font,
      side,
      size: 64,
      labelSize: 24,
      scale: side === 1 ? 'y2' : 'y',
      grid: side === 1 ? { show: false } : grid,
      ticks,
      values: (_u, splits) => splits.map(number),
    };
  }

  function options(spec, width) {
    const xs = spec.data[0];
    const xMax = spec.kind === 'percentile' ? 10 ** Math.max(4, Math.ceil(Math.log10(Math.max(10, ...xs)))) : null;
    const scales = {
      x: xMax === null ? { time: false } : { time: false, distr: 3, log: 10, range: [1, xMax] },
      y: { range: fromZero },
    };
    const axes = [xAxis(spec), yAxis(spec.yLabel, 3)];
    if (spec.y2 !== undefined) {
      scales.y2 = { range: fromZero };
      axes.push(yAxis(spec.y2.label, 1));
    }
    const xSeries = {
      label: spec.kind === 'percentile' ? 'percentile' : 'second',
      value: (_u, x) => (x === null ? '–' : spec.kind === 'percentile' ? percentOf(x) : `${x} s`),
    };
    const lines = spec.series.map((line) => ({
      label: line.label,
      stroke: line.color,
      width: 2,
      dash: line.dash,
      scale: line.axis ?? 'y',
      spanGaps: true,
      points: { show: spec.kind === 'time' && xs.length < 3 },
      value: (_u, v) => (v === null ? '–' : `${number(v)} ${line.axis === 'y2' ? spec.y2.unit : spec.yUnit}`),
    }));
    return { width, height: 300, scales, axes, series: [xSeries, ...lines], legend: { live: true } };
  }

  const charts = [];
  for (const spec of specs) {
    const target = document.querySelector(`[data-chart="${spec.id}"]`);
    if (target === null) continue;
    charts.push({ target, plot: new uPlot(options(spec, target.clientWidth), spec.data, target) });
  }
  addEventListener('resize', () => {
    for (const { target, plot } of charts) plot.setSize({ width: target.clientWidth, height: 300 });
  });
})();
