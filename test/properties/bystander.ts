import { type ChildProcess, fork } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';

/** What the bystander saw since its last report. */
export type BystanderReport = {
  /** Token frames received, and gaps timed between consecutive token frames of one answer. */
  tokens: number;
  gaps: number;
  worstGapMs: number;
  /** When the worst gap ended (epoch ms; the report's time if it was still open). */
  worstGapEndedAt: number;
  p99GapMs: number;
  /** Answers finished, by finish reason. */
  turns: number;
  finishes: Record<string, number>;
  /** From generation.started (not the time queued) to the answer's first token. */
  worstTtftMs: number;
  /** Ping round trips (a ping still unanswered counts with its age). */
  pings: number;
  worstPingMs: number;
  p99PingMs: number;
  /** Refusals, undecodable frames and closes: none is expected. */
  errors: string[];
};

export type BystanderCommand = { kind: 'report' } | { kind: 'stop' };
export type BystanderMessage =
  | { kind: 'ready' }
  | { kind: 'report'; report: BystanderReport }
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
    return message.report;
  }
}
