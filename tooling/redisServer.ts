import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './ports.js';

/** Debian's redis-server (apt `redis-server`); REDIS_SERVER overrides it. */
const REDIS_SERVER = process.env.REDIS_SERVER ?? '/usr/bin/redis-server';
const START_TIMEOUT_MS = 10_000;

/** A throwaway redis-server on 127.0.0.1, for tests and benchmarks. */
export type RedisServer = {
  /** `redis://127.0.0.1:<port>/0` */
  url: string;
  port: number;
  /** The running redis-server's process id (for its memory and CPU). */
  pid(): number;
  /** Stops it (SIGTERM, then SIGKILL after 2 s) and removes its directory. Idempotent. */
  stop(): Promise<void>;
  /** SIGKILL, as a crash would (the directory is left for stop() to remove). */
  kill(): void;
  /** Kills it (SIGKILL) and waits until it has exited and the port no longer answers: Redis is lost. */
  pause(): Promise<void>;
  /**
   * Starts a new redis-server on the same port (and directory) and waits until it answers PING.
   * Nothing is persisted, so it comes back empty.
   */
  resume(): Promise<void>;
  /** SIGSTOP: it holds its connections but answers nothing (a stalled server, a network black hole). */
  freeze(): void;
  /** SIGCONT after freeze(). */
  thaw(): void;
  /** The process's last output lines, for failure messages. */
  output(): string[];
};

/**
 * Runs `redis-server` on a free port of 127.0.0.1 with a fresh temporary directory and no
 * persistence, and resolves once it answers PING. It is killed when this process exits.
 */
export async function startRedis(): Promise<RedisServer> {
  const dir = mkdtempSync(join(tmpdir(), 'llmchat-redis-'));
  const output: string[] = [];
  let child: ChildProcess | undefined;
  let port = 0;
  let stopped = false;

  const onExit = (): void => {
    child?.kill('SIGKILL');
  };
  process.once('exit', onExit);

  const launch = async (): Promise<void> => {
    const proc = spawn(
      REDIS_SERVER,
      [
        '--port',
        String(port),
        '--bind',
        '127.0.0.1',
        '--dir',
        dir,
        '--save',
        '',
        '--appendonly',
        'no',
        '--daemonize',
        'no',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    child = proc;
    const keep = (data: Buffer): void => {
      output.push(...data.toString('utf8').split('\n').filter(Boolean));
      if (output.length > 200) output.splice(0, output.length - 200);
    };
    proc.stdout?.on('data', keep);
    proc.stderr?.on('data', keep);
    const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
    const spawnError = new Promise<Error>((resolve) => proc.once('error', resolve));
    const deadline = Date.now() + START_TIMEOUT_MS;
    for (;;) {
      const state = await Promise.race([
        ping(port).then((ok) => (ok ? 'up' : 'down')),
        exited.then(() => 'exited' as const),
        spawnError.then((error) => error),
      ]);
      if (state === 'up') return;
      if (state instanceof Error) throw new Error(`Could not run ${REDIS_SERVER}: ${state.message}`);
      if (state === 'exited' || Date.now() > deadline) {
        proc.kill('SIGKILL');
        throw new Error(
          `redis-server on port ${port} did not start (${state === 'exited' ? 'it exited' : 'no PONG in time'}):\n` +
            output.slice(-20).join('\n'),
        );
      }
      await sleep(20);
    }
  };

  const killAndWait = async (signal: NodeJS.Signals, graceMs: number): Promise<void> => {
    const proc = child;
    if (proc === undefined || proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
    proc.kill(signal);
    const timer = setTimeout(() => proc.kill('SIGKILL'), graceMs);
    await exited;
    clearTimeout(timer);
  };

  // A free port can be taken between the probe and redis binding it: try a few.
  let lastError: unknown;
  for (let attempt = 0; attempt < 5; attempt += 1) {
    port = await freePort();
    try {
      await launch();
      lastError = undefined;
      break;
    } catch (error) {
      lastError = error;
      if (error instanceof Error && error.message.startsWith('Could not run')) break;
    }
  }
  if (lastError !== undefined) {
    process.removeListener('exit', onExit);
    rmSync(dir, { recursive: true, force: true });
    throw lastError;
  }

  return {
    url: `redis://127.0.0.1:${port}/0`,
    port,
    pid: () => child?.pid ?? 0,
    output: () => [...output],
    kill: () => {
      child?.kill('SIGKILL');
    },
    freeze: () => {
      child?.kill('SIGSTOP');
    },
    thaw: () => {
      child?.kill('SIGCONT');
    },
    pause: async () => {
      await killAndWait('SIGKILL', 0);
      while (await ping(port)) await sleep(20);
    },
    resume: async () => {
      if (stopped) throw new Error('redis-server was stopped; start a new one');
      await killAndWait('SIGKILL', 0);
      await launch();
    },
    stop: async () => {
      if (stopped) return;
      stopped = true;
      child?.kill('SIGCONT');
      await killAndWait('SIGTERM', 2000);
      process.removeListener('exit', onExit);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A port that was free a moment ago on 127.0.0.1. */

/** Whether something on the port answers PING with +PONG within a second. */
function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    let reply = '';
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1000, () => done(false));
    socket.once('error', () => done(false));
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.on('data', (data) => {
      reply += data.toString('latin1');
      if (reply.includes('\r\n')) done(reply.startsWith('+PONG'));
    });
    socket.once('close', () => done(false));
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
