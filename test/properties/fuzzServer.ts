import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import WebSocket from 'ws';
import { type SpawnedServer, spawnServer } from '../../tooling/serverProcess.js';

/** Generated frames in the attack: 100,000 in CI; `npm run fuzz` asks for more. */
export const FUZZ_FRAMES = envInt('FUZZ_FRAMES', 100_000);
/** The seed of every generator, printed with each failure so that a run can be replayed. */
export const FUZZ_SEED = envInt('FUZZ_SEED', 20_250_601);
/**
 * Generated frames per second, all attackers together. Unpaced, the generators and the server
 * share this machine's two cores at 100% and the bystander's latency measures the OS scheduler;
 * at 3,000 a second both have headroom (worst bystander gap about 100 ms, p99 about 20 ms), so a
 * stall stands out, and 100,000 frames take about 35 s.
 */
export const FUZZ_RATE = envInt('FUZZ_RATE', 3_000);
/**
 * Sessions unused this long are forgotten. The attackers open thousands, which the server keeps
 * (as documented) until they expire: short-lived here, so that the memory measured after the
 * attack is what the server leaked, not what it was asked to keep. It must stay well above the
 * longest turn: the time-to-live counts from a session's last request, even while it answers.
 */
export const SESSION_TTL_MS = 5_000;

/**
 * The server's limits opened wide, so that the attackers keep talking instead of being cut off or
 * rate limited (the limits have tests of their own), and sessions and history can pile up without
 * ever refusing the bystander. `--default-max-tokens 8` keeps generated chat.send cheap;
 * `--max-tokens 64` makes anything above it a documented bad_frame; see SESSION_TTL_MS.
 */
const FUZZ_FLAGS = [
  ['--max-bad-frames', '1000000'],
  ['--requests-per-minute', '1000000'],
  ['--tokens-per-minute', '100000000'],
  ['--resumes-per-minute', '100000'],
  ['--max-tokens', '64'],
  ['--default-max-tokens', '8'],
  ['--max-sessions', '1000000'],
  ['--max-sessions-per-key', '1000000'],
  ['--max-history-chars-per-key', '2000000000'],
  ['--shutdown-grace-ms', '500'],
  ['--session-ttl-ms', String(SESSION_TTL_MS)],
].flat();

/** A generation the server logged as done (its `generation done` line): when it ended, and what it cost. */
export type LoggedGeneration = { endedAt: number; totalMs: number; promptTokens: number; finish: string };
/** Prompts at least this long are kept for failure messages: their prefill is what can hold the engine. */
const LONG_PROMPT_TOKENS = 200;

export type FuzzServer = {
  spawned: SpawnedServer;
  port: number;
  wsUrl: string;
  httpUrl: string;
  /** True while the server process runs. */
  alive(): boolean;
  /** Resident memory of the server process, in bytes. */
  rssBytes(): number;
  /** A full garbage collection in the server (through its inspector), so that RSS shows what it keeps. */
  collectGarbage(): Promise<void>;
  /** The last lines it logged, for failure messages. */
  tail(lines?: number): string;
  /** Generations with long prompts that ran at some point between `from` and `to` (epoch ms). */
  longPromptsBetween(from: number, to: number): LoggedGeneration[];
  stop(): Promise<void>;
};

/**
 * The server as `npm start` runs it, in a child process: its memory and event loop are its own.
 * Its inspector listens on a loopback port, only so that the test can ask for a garbage collection.
 */
export async function startFuzzServer(): Promise<FuzzServer> {
  const spawned = spawnServer(FUZZ_FLAGS, {}, ['--inspect=127.0.0.1:0']);
  const port = await spawned.port();
  await spawned.ready();
  // Read now: the output keeps only recent lines.
  const inspectorUrl = spawned.output.map((line) => /Debugger listening on (ws:\S+)/.exec(line)?.[1]).find(Boolean);
  if (inspectorUrl === undefined)
    throw new Error(`The server's inspector did not start:\n${spawned.output.join('\n')}`);
  const pid = spawned.child.pid as number;
  const longPrompts: LoggedGeneration[] = [];
  createInterface({ input: spawned.child.stdout as NodeJS.ReadableStream }).on('line', (line) => {
    const logged = longPromptOf(line);
    if (logged === undefined) return;
    longPrompts.push(logged);
    if (longPrompts.length > 10_000) longPrompts.splice(0, 5_000);
  });
  return {
    spawned,
    port,
    wsUrl: `ws://127.0.0.1:${port}/v1/ws`,
    httpUrl: `http://127.0.0.1:${port}`,
    alive: () => spawned.child.exitCode === null && spawned.child.signalCode === null,
    rssBytes: () => rssOf(pid),
    collectGarbage: () => inspect(inspectorUrl, 'HeapProfiler.collectGarbage'),
    tail: (lines = 20) => spawned.output.slice(-lines).join('\n'),
    longPromptsBetween: (from, to) => longPrompts.filter((g) => g.endedAt >= from && g.endedAt - g.totalMs <= to),
    stop: async () => {
      if (spawned.child.exitCode !== null) return;
      spawned.child.kill('SIGTERM');
      await spawned.exited;
    },
  };
}

/** A `generation done` log line of a long prompt, else undefined. */
function longPromptOf(line: string): LoggedGeneration | undefined {
  if (!line.includes('"generation done"')) return undefined;
  try {
    const entry = JSON.parse(line) as { time?: number; totalMs?: number; promptTokens?: number; finish?: string };
    const { time, totalMs, promptTokens, finish } = entry;
    if (
      time === undefined ||
      totalMs === undefined ||
      promptTokens === undefined ||
      promptTokens < LONG_PROMPT_TOKENS
    ) {
      return undefined;
    }
    return { endedAt: time, totalMs, promptTokens, finish: finish ?? '?' };
  } catch {
    return undefined;
  }
}

/** Calls one method of the inspector protocol and waits for its answer. */
function inspect(url: string, method: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url);
    socket.once('open', () => socket.send(JSON.stringify({ id: 1, method })));
    socket.once('message', (data: Buffer) => {
      socket.close();
      const answer = JSON.parse(data.toString()) as { error?: { message: string } };
      if (answer.error === undefined) resolve();
      else reject(new Error(`${method}: ${answer.error.message}`));
    });
    socket.once('error', reject);
  });
}

/** VmRSS from /proc/<pid>/status (Linux). */
export function rssOf(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = /^VmRSS:\s+(\d+)\s+kB/m.exec(status)?.[1];
  if (kb === undefined) throw new Error(`No VmRSS in /proc/${pid}/status`);
  return Number(kb) * 1024;
}

export const mb = (bytes: number): string => `${(bytes / 1024 / 1024).toFixed(1)} MB`;

function envInt(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isSafeInteger(value) || value < 0) throw new Error(`${name} must be a whole number, not "${raw}"`);
  return value;
}
