import hdr from 'hdr-histogram-js';
import type { Percentiles, StreamClock } from '../tooling/latency.js';

export const LATENCIES = ['ttft', 'itl', 'e2e', 'queue', 'cancelAck', 'connect'] as const;
export type Latency = (typeof LATENCIES)[number];

const newHistogram = () =>
  hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 3_600_000_000, numberOfSignificantValueDigits: 3 });

/** Points per decade of 1/(1−p) on the latency-by-percentile curve. */
const CURVE_STEPS_PER_DECADE = 20;

export type SecondSample = {
  /** When the bucket ended, in seconds since the run started. */
  t: number;
  /** How long the bucket lasted, in seconds: about 1, less for the last one. */
  spanS: number;
  /** False for a bucket cut by the stop, lying after it (the drain) or under half a second: such a bucket draws a false drop. */
  full: boolean;
  tokens: number;
  done: number;
  ttft: Percentiles;
  itl: Percentiles;
};

const ms = (micros: number) => Math.round(micros) / 1000;

/**
 * A histogram's percentiles in ms; HDR reports a bucket's upper end, so each is capped at the exact
 * max (hdr-histogram-js keeps the recorded max itself, not its bucket's end, at a unit of 1 µs).
 */
function percentilesOfHistogram(h: hdr.Histogram): Percentiles {
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
  private bucketStartedAt = this.startedAt;
  /** When the load stopped (users told to stop); the seconds after it are the drain. */
  private loadEndedAt: number | undefined;

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

  /** Marks the moment the load stopped: buckets ending later are not full. */
  endLoad(now = performance.now()): void {
    this.loadEndedAt ??= now;
  }

  /** Closes the current second of the time series. */
  tick(now = performance.now()): SecondSample {
    const { ttft, itl, tokens, done } = this.second;
    const spanMs = now - this.bucketStartedAt;
    // A timer fires a few ms late: a bucket ending just after the stop is still whole. A bucket
    // under half a second (after a late tick) would be noise; its rates are per second anyway.
    const full = spanMs >= 500 && (this.loadEndedAt === undefined || now <= this.loadEndedAt + 50);
    this.bucketStartedAt = now;
    const sample = {
      t: Math.round(now - this.startedAt) / 1000,
      spanS: Math.round(spanMs) / 1000,
      full,
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

  /**
   * Latency by percentile for HdrHistogram's plot, as [percentile 0–100, ms]: evenly spaced on
   * 1/(1−p) in log scale, up to 1 − 1/count (past it the samples say nothing more), ending at the max.
   */
  curve(name: Latency): Array<[number, number]> {
    const h = this.histograms.get(name) ?? newHistogram();
    if (h.totalCount === 0) return [];
    const top = Math.max(2, h.totalCount);
    const points: Array<[number, number]> = [];
    for (let step = 0; 10 ** (step / CURVE_STEPS_PER_DECADE) < top; step++) {
      const p = 100 * (1 - 10 ** (-step / CURVE_STEPS_PER_DECADE));
      points.push([Math.round(p * 1e6) / 1e6, ms(Math.min(h.getValueAtPercentile(p), h.maxValue))]);
    }
    points.push([Math.round(100 * (1 - 1 / top) * 1e6) / 1e6, ms(h.maxValue)]);
    return points;
  }
}
