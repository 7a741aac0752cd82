/** The q-quantile (0–1) of `values`, nearest rank; NaN when empty. */
export function quantile(values: readonly number[], q: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[rank] as number;
}

export const median = (values: readonly number[]): number => quantile(values, 0.5);

/** What one batch of concurrent streams measured. */
export type RunMeasure = {
  tokens: number;
  wallMs: number;
  ttftMs: number[];
  interTokenMs: number[];
};

export type RunSummary = {
  tokensPerSecond: number;
  ttftP50: number;
  ttftP99: number;
  itlP50: number;
  itlP99: number;
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
  const ttft = runs.flatMap((run) => run.ttftMs);
  const itl = runs.flatMap((run) => run.interTokenMs);
  return {
    tokensPerSecond: median(runs.map((run) => (run.tokens / run.wallMs) * 1000)),
    ttftP50: quantile(ttft, 0.5),
    ttftP99: quantile(ttft, 0.99),
    itlP50: quantile(itl, 0.5),
    itlP99: quantile(itl, 0.99),
  };
}
