import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { MODEL_PATH } from './testModel.js';

export type SpawnedServer = {
  child: ChildProcess;
  /** Every stdout line (JSON logs) and stderr line so far. */
  output: string[];
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  port: () => Promise<number>;
  ready: () => Promise<void>;
};

/** The server's entry from source (through tsx), or as `npm start` runs it, built into dist/. */
const ENTRIES = { source: ['--import', 'tsx', 'server/main.ts'], built: ['dist/server/main.js'] } as const;

/** Runs the server's CLI as a child process, for signal and exit tests. */
export function spawnServer(
  args: string[] = [],
  env: Record<string, string> = {},
  nodeArgs: string[] = [],
  entry: keyof typeof ENTRIES = 'source',
): SpawnedServer {
  const child = spawn(process.execPath, [...nodeArgs, ...ENTRIES[entry], '--port', '0', ...args], {
    // In memory unless a test names a store: the default SQLite file is one process's at a time.
    env: { ...process.env, MODEL_PATH, LOG_LEVEL: 'info', STORE: 'memory', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const output: string[] = [];
  const listeners = new Set<(line: string) => void>();
  for (const stream of [child.stdout, child.stderr]) {
    createInterface({ input: stream }).on('line', (line) => {
      output.push(line);
      // Long runs (soak, scale) log a lot: keep the recent lines only.
      if (output.length > 2000) output.splice(0, 1000);
      for (const listener of listeners) listener(line);
    });
  }
  const exited = once(child, 'exit').then(
    ([code, signal]) => ({ code, signal }) as { code: number | null; signal: NodeJS.Signals | null },
  );
  const waitForLog = (msg: string) =>
    new Promise<Record<string, unknown>>((resolve, reject) => {
      const check = (line: string) => {
        const entry = parseJson(line);
        if (entry?.msg === msg) resolve(entry);
      };
      output.forEach(check);
      listeners.add(check);
      exited.then(() => reject(new Error(`Server exited before logging "${msg}":\n${output.join('\n')}`)));
    });
  return {
    child,
    output,
    exited,
    port: async () => Number((await waitForLog('listening')).port),
    ready: async () => {
      await waitForLog('model loaded; ready');
    },
  };
}

function parseJson(line: string): Record<string, unknown> | undefined {
  try {
    return JSON.parse(line) as Record<string, unknown>;
  } catch {
    return undefined;
  }
}

/** Resident memory and CPU time (user + system) of a process, from /proc. */
export function processUsage(pid: number): { rssMb: number; cpuMs: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const rssKb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
  const ticks = Number(fields[11] ?? 0) + Number(fields[12] ?? 0);
  return { rssMb: Math.round(rssKb / 102.4) / 10, cpuMs: ticks * 10 };
}

/** The server as a child process, ready, with its URLs; stop() ends it. */
export async function startServerProcess(args: string[], env: Record<string, string> = {}) {
  const server = spawnServer(args, env);
  const port = await server.port();
  await server.ready();
  const pid = server.child.pid as number;
  return {
    pid,
    port,
    wsUrl: `ws://127.0.0.1:${port}/v1/ws`,
    httpUrl: `http://127.0.0.1:${port}`,
    stop: async () => {
      server.child.kill('SIGTERM');
      await server.exited;
    },
  };
}
