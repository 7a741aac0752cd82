import { type ChildProcess, fork } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import type { Percentiles } from '../../tooling/latency.js';

/** What the bystander measured since its last report, as its process sends it. */
export type BystanderMeasures = {
  /** Token frames received. */
  tokens: number;
  /**
   * Gaps between consecutive token frames of one answer, and when the worst one ended (epoch ms;
   * the report's time if it was still open).
   */
  gapMs: Percentiles;
  worstGapEndedAt: number;
  /** Answers finished, by finish reason. */
  turns: number;
  finishes: Record<string, number>;
  /** From generation.started (not the time queued) to the answer's first token. */
  ttftMs: Percentiles;
  /** Ping round trips (a ping still unanswered counts with its age). */
  pingMs: Percentiles;
  /** Refusals, undecodable frames and closes: none is expected. */
  errors: string[];
};

/**
 * The report: the measures, and the names test/integration/properties.test.ts reads, read off
 * their percentiles (0 where nothing was timed, as before). Drop these once it reads the
 * percentiles themselves.
 */
export type BystanderReport = BystanderMeasures & {
  gaps: number;
  worstGapMs: number;
  p99GapMs: number;
  worstTtftMs: number;
  pings: number;
  worstPingMs: number;
  p99PingMs: number;
};

function reportOf(measures: BystanderMeasures): BystanderReport {
  const orZero = (ms: number) => (Number.isNaN(ms) ? 0 : ms);
  return {
    ...measures,
    gaps: measures.gapMs.count,
    worstGapMs: orZero(measures.gapMs.max),
    p99GapMs: orZero(measures.gapMs.p99),
    worstTtftMs: orZero(measures.ttftMs.max),
    pings: measures.pingMs.count,
    worstPingMs: orZero(measures.pingMs.max),
    p99PingMs: orZero(measures.pingMs.p99),
  };
}

export type BystanderCommand = { kind: 'report' } | { kind: 'stop' };
export type BystanderMessage =
  | { kind: 'ready' }
  | { kind: 'report'; report: BystanderMeasures }
  | { kind: 'failed'; error: string };

/**
 * A conversation that goes on beside the attack, in a child process of its own (bystanderProcess.ts)
 * so that the test's generators, busy on this process's event loop, cannot delay its clock.
 */
export class Bystander {
  private constructor(private readonly child: ChildProcess) {}

  static async start(wsUrl: string): Promise<Bystander> {
    const child = fork(join(import.meta.dirname, 'bystanderProcess.ts'), [wsUrl], {
      execArgv: ['--import', 'tsx'],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      // Structured clone, not JSON: an empty Percentiles' NaN stays NaN.
      serialization: 'advanced',
    });
    const [message] = (await once(child, 'message')) as [BystanderMessage];
    if (message.kind !== 'ready') throw new Error(`The bystander did not start: ${JSON.stringify(message)}`);
    return new Bystander(child);
  }

  /** What it saw since the last report (or its start). */
  report(): Promise<BystanderReport> {
    return this.ask({ kind: 'report' });
  }

  /** Stops it; resolves to its last report. */
  async stop(): Promise<BystanderReport> {
    const last = await this.ask({ kind: 'stop' });
    if (this.child.exitCode === null) await once(this.child, 'exit');
    return last;
  }

  private async ask(command: BystanderCommand): Promise<BystanderReport> {
    const answer = once(this.child, 'message') as Promise<[BystanderMessage]>;
    this.child.send(command);
    const [message] = await answer;
    if (message.kind !== 'report') throw new Error(`The bystander failed: ${JSON.stringify(message)}`);
    return reportOf(message.report);
  }
}
