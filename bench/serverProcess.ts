import { readFileSync } from 'node:fs';
import { spawnServer } from '../test/helpers/spawnServer.js';

/** Resident memory and CPU time (user + system) of a process, from /proc. */
export function processUsage(pid: number): { rssMb: number; cpuMs: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const rssKb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
  const ticks = Number(fields[11] ?? 0) + Number(fields[12] ?? 0);
  return { rssMb: Math.round(rssKb / 102.4) / 10, cpuMs: ticks * 10 };
}

/** The server as a child process (as `npm start` runs it), ready; stop() ends it. */
export async function startServerProcess(args: string[]) {
  const server = spawnServer(args);
  const port = await server.port();
  await server.ready();
  const pid = server.child.pid as number;
  return {
    pid,
    wsUrl: `ws://127.0.0.1:${port}/v1/ws`,
    httpUrl: `http://127.0.0.1:${port}`,
    stop: async () => {
      server.child.kill('SIGTERM');
      await server.exited;
    },
  };
}
