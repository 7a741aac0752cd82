import hdr from 'hdr-histogram-js';
import type { Percentiles, StreamClock } from '../tooling/latency.js';

export const LATENCIES = ['ttft', 'itl', 'e2e', 'queue', 'cancelAck', 'connect'] as const;
export type Latency = (typeof LATENCIES)[number];

const newHistogram = () =>
  hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 3_600_000_000, numberOfSignificantValueDigits: 3 });

const CURVE_POINTS = [0, 10, 25, 50, 75, 90, 95, 99, 99.5, 99.9, 100];

export type SecondSample = {
  t: number;
  tokens: number;
  done: number;
  ttft: Percentiles;
  itl: Percentiles;
};

/** A histogram's percentiles in ms; HDR reports a bucket's upper end, so each is capped at the exact max. */
function percentilesOfHistogram(h: hdr.Histogram): Percentiles {
  const ms = (micros: number) => Math.round(micros) / 1000;
  const at = (percentile: number) => ms(Math.min(h.getValueAtPercentile(percentile), h.maxValue));
  return {
    count: h.totalCount,
    p50: at(50),
    p90: at(90),
    p99: at(99),
    p999: at(99.9),
    max: ms(h.maxValue),
    mean: ms(h.mean),
  };
}

/** What the harness measured: HDR histograms (in microseconds), counters, and a per-second series. */
export class Recorder {
  private readonly histograms = new Map<Latency, hdr.Histogram>(LATENCIES.map((name) => [name, newHistogram()]));
  private second = { ttft: newHistogram(), itl: newHistogram(), tokens: 0, done: 0 };
  readonly series: SecondSample[] = [];
  readonly errors = new Map<string, number>();
  readonly finishes = new Map<string, number>();
  readonly streamRates: number[] = [];
  tokens = 0;
  requests = 0;
  connectionFailures = 0;
  resumes = { tried: 0, succeeded: 0 };
  readonly startedAt = performance.now();

  record(name: Latency, ms: number): void {
    const micros = Math.max(1, Math.round(ms * 1000));
    this.histograms.get(name)?.recordValue(micros);
    if (name === 'ttft') this.second.ttft.recordValue(micros);
    if (name === 'itl') this.second.itl.recordValue(micros);
  }

  /** Records a stream's chunk of `tokens` by the one latency rule: its first token, its gaps, its tokens. */
  clock(clock: StreamClock, tokens: number): void {
    const { ttftMs, gaps } = clock.chunk(tokens);
    if (ttftMs !== undefined) this.record('ttft', ttftMs);
    for (const gap of gaps) this.record('itl', gap);
    this.addTokens(tokens);
  }

  addTokens(count: number): void {
    this.tokens += count;
    this.second.tokens += count;
  }

  finish(reason: string, tokens: number, streamMs: number): void {
    this.finishes.set(reason, (this.finishes.get(reason) ?? 0) + 1);
    this.second.done += 1;
    if (tokens > 1 && streamMs > 0) this.streamRates.push((tokens / streamMs) * 1000);
  }

  error(code: string): void {
    this.errors.set(code, (this.errors.get(code) ?? 0) + 1);
  }

  /** Closes the current second of the time series. */
  tick(): SecondSample {
    const { ttft, itl, tokens, done } = this.second;
    const sample = {
      t: Math.round((performance.now() - this.startedAt) / 1000),
      tokens,
      done,
      ttft: percentilesOfHistogram(ttft),
      itl: percentilesOfHistogram(itl),
    };
    this.series.push(sample);
    this.second = { ttft: newHistogram(), itl: newHistogram(), tokens: 0, done: 0 };
    return sample;
  }

  percentiles(name: Latency): Percentiles {
    return percentilesOfHistogram(this.histograms.get(name) ?? newHistogram());
  }

  /** Latency by percentile, for the HDR plot: [percentile, ms]. */
  curve(name: Latency): Array<[number, number]> {
    const h = this.histograms.get(name) ?? newHistogram();
    if (h.totalCount === 0) return [];
    return CURVE_POINTS.map((p) => [p, Math.min(h.getValueAtPercentile(p), h.maxValue) / 1000]);
  }
}
