/** The q-quantile (0–1) of `values`, nearest rank; NaN when empty. */
export function quantile(values: readonly number[], q: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[rank] as number;
}

export const median = (values: readonly number[]): number => quantile(values, 0.5);

/**
 * Latency percentiles in milliseconds: the one shape the benchmarks, the load harness and its
 * report use, whether computed exactly from samples or from an HDR histogram. No percentile
 * exceeds `max`.
 */
export type Percentiles = {
  count: number;
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
  mean: number;
};

/** Exact (nearest rank) percentiles of `values`; NaN fields when empty. */
export function percentilesOf(values: readonly number[]): Percentiles {
  let sum = 0;
  let max = Number.NaN;
  // A loop, not Math.max(...values): a long window has more samples than the call stack allows.
  for (const value of values) {
    sum += value;
    if (!(value <= max)) max = value;
  }
  return {
    count: values.length,
    p50: quantile(values, 0.5),
    p90: quantile(values, 0.9),
    p99: quantile(values, 0.99),
    p999: quantile(values, 0.999),
    max,
    mean: values.length === 0 ? Number.NaN : sum / values.length,
  };
}

/** What one batch of concurrent streams measured. */
export type RunMeasure = {
  tokens: number;
  wallMs: number;
  ttftMs: number[];
  interTokenMs: number[];
};

export type RunSummary = {
  tokensPerSecond: number;
  ttft: Percentiles;
  itl: Percentiles;
};

/**
 * The one latency rule of the benchmarks, the load harness and the tests, per stream: time to
 * first token from the request, and inter-token gaps where a chunk of k tokens after a gap g
 * counts as k tokens g/k apart. Call `chunk(tokens)` as output arrives; it returns what it added.
 */
export class StreamClock {
  private last: number | undefined;
  ttftMs: number | undefined;
  tokens = 0;
  readonly gaps: number[] = [];

  constructor(private readonly startedAt: number) {}

  chunk(tokens: number, now = performance.now()): { ttftMs?: number; gaps: number[] } {
    if (tokens === 0) return { gaps: [] };
    const added: number[] = [];
    if (this.last === undefined) this.ttftMs = now - this.startedAt;
    else for (let i = 0; i < tokens; i++) added.push((now - this.last) / tokens);
    const first = this.last === undefined;
    this.gaps.push(...added);
    this.last = now;
    this.tokens += tokens;
    return first && this.ttftMs !== undefined ? { ttftMs: this.ttftMs, gaps: added } : { gaps: added };
  }
}

export function measureOf(clocks: readonly StreamClock[], wallMs: number): RunMeasure {
  return {
    tokens: clocks.reduce((sum, clock) => sum + clock.tokens, 0),
    wallMs,
    ttftMs: clocks.map((clock) => clock.ttftMs ?? Number.NaN),
    interTokenMs: clocks.flatMap((clock) => clock.gaps),
  };
}

/** Pools repeated runs: throughput is the median run's, latencies are over all runs. */
export function summarize(runs: readonly RunMeasure[]): RunSummary {
  return {
    tokensPerSecond: median(runs.map((run) => (run.tokens / run.wallMs) * 1000)),
    ttft: percentilesOf(runs.flatMap((run) => run.ttftMs)),
    itl: percentilesOf(runs.flatMap((run) => run.interTokenMs)),
  };
}
