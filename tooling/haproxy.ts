import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { accepts, freePort } from './ports.js';

/** Debian's haproxy (apt `haproxy`); HAPROXY overrides it. */
export const HAPROXY = process.env.HAPROXY ?? '/usr/sbin/haproxy';
const START_TIMEOUT_MS = 10_000;

export type Backend = {
  host: string;
  port: number /** Server name in the config and stats; `s1`, `s2`, … by default. */;
  name?: string;
};

export type HaproxyOptions = {
  backends: Backend[];
  /** `roundrobin` (the default: consecutive connections alternate, which tests rely on) or `leastconn`. */
  balance?: 'roundrobin' | 'leastconn';
  /** Health check interval; a backend is out after `fall` failed checks and back after `rise` good ones. */
  checkIntervalMs?: number;
  fall?: number;
  rise?: number;
  /**
   * Adds `X-Served-By: <server name>` to every response (the WebSocket upgrade's 101 included), so
   * that a test can tell which instance took a connection. On by default here; the production
   * example (docs/deploy/haproxy.cfg) leaves it out.
   */
  servedByHeader?: boolean;
};

/** One server line of `show stat`. */
export type BackendStat = {
  name: string;
  /** `UP`, `DOWN`, `UP 1/2` (going down), `DOWN 1/1` (going up), `MAINT`, `no check`. */
  status: string;
  /** Sessions open now, and in all. */
  current: number;
  total: number;
  /** Last health check, e.g. `L7OK`, `L4CON`, `L7STS`. */
  check: string;
};

export type Haproxy = {
  port: number;
  /** `http://127.0.0.1:<port>` */
  url: string;
  /** `ws://127.0.0.1:<port>/v1/ws` */
  wsUrl: string;
  /** The generated configuration, for failure messages and the docs. */
  config: string;
  /** Each backend's state, from the stats socket. */
  stats(): Promise<BackendStat[]>;
  /** Waits until the named backend's status starts with `status` (`UP` or `DOWN`); resolves with the time it took. */
  waitFor(name: string, status: 'UP' | 'DOWN', timeoutMs?: number): Promise<number>;
  /** HAProxy's last output lines (its request log and alerts). */
  output(): string[];
  /** SIGTERM (SIGKILL after 2 s), then removes its directory. Idempotent. */
  stop(): Promise<void>;
};

/** The server names `startHaproxy` gives backends without one. */
export function backendName(backend: Backend, index: number): string {
  return backend.name ?? `s${index + 1}`;
}

/** A configuration for `backends` behind a frontend on 127.0.0.1:`port` (what startHaproxy runs). */
export function haproxyConfig(options: HaproxyOptions, port: number, statsSocket: string): string {
  const { balance = 'roundrobin', checkIntervalMs = 500, fall = 2, rise = 1, servedByHeader = true } = options;
  const servers = options.backends.map(
    (backend, index) => `  server ${backendName(backend, index)} ${backend.host}:${backend.port} check`,
  );
  return [
    'global',
    '  log stdout format raw local0 info',
    `  stats socket ${statsSocket} mode 600 level admin`,
    // Each connection takes two descriptors (client and server side): stay under a test machine's limits.
    '  maxconn 4096',
    '',
    'defaults',
    '  mode http',
    '  log global',
    '  option httplog',
    '  option dontlognull',
    '  timeout connect 2s',
    // Plain HTTP requests and the upgrade itself; once upgraded, `timeout tunnel` applies instead.
    '  timeout client 30s',
    '  timeout server 30s',
    '  timeout http-request 10s',
    '  timeout client-fin 5s',
    // WebSockets: longer than the server's idle timeout (it pings), so the server decides.
    '  timeout tunnel 1h',
    // A backend that refuses the connection (killed, not yet seen down), closes it without an
    // answer, or answers 503 (loading, shutting down, store away: nothing started) is skipped
    // for another, as in docs/deploy/haproxy.cfg.
    '  retries 2',
    '  option redispatch 1',
    '  retry-on conn-failure empty-response 503',
    '',
    'frontend chat',
    `  bind 127.0.0.1:${port}`,
    '  default_backend instances',
    '',
    'backend instances',
    `  balance ${balance}`,
    '  option httpchk',
    '  http-check send meth GET uri /readyz ver HTTP/1.1 hdr Host localhost',
    '  http-check expect status 200',
    `  default-server inter ${checkIntervalMs}ms fastinter ${checkIntervalMs}ms downinter ${checkIntervalMs}ms fall ${fall} rise ${rise}`,
    ...(servedByHeader ? ['  http-response set-header X-Served-By %s'] : []),
    ...servers,
    '',
  ].join('\n');
}

/**
 * Runs haproxy in the foreground (`-db`) in front of `backends`, on a free port of 127.0.0.1, with a
 * generated config in a fresh temporary directory; resolves once its frontend accepts connections.
 * It is killed when this process exits.
 */
export async function startHaproxy(options: HaproxyOptions): Promise<Haproxy> {
  if (options.backends.length === 0) throw new Error('startHaproxy needs at least one backend');
  const dir = mkdtempSync(join(tmpdir(), 'llmchat-haproxy-'));
  const configPath = join(dir, 'haproxy.cfg');
  const statsSocket = join(dir, 'admin.sock');
  const output: string[] = [];
  let child: ChildProcess | undefined;
  let stopped = false;

  const onExit = (): void => {
    child?.kill('SIGKILL');
  };
  process.once('exit', onExit);

  const launch = async (port: number): Promise<string> => {
    const config = haproxyConfig(options, port, statsSocket);
    writeFileSync(configPath, config);
    const proc = spawn(HAPROXY, ['-db', '-f', configPath], { stdio: ['ignore', 'pipe', 'pipe'] });
    child = proc;
    const keep = (data: Buffer): void => {
      output.push(...data.toString('utf8').split('\n').filter(Boolean));
      if (output.length > 500) output.splice(0, output.length - 500);
    };
    proc.stdout?.on('data', keep);
    proc.stderr?.on('data', keep);
    const exited = new Promise<'exited'>((resolve) => proc.once('exit', () => resolve('exited')));
    const spawnError = new Promise<Error>((resolve) => proc.once('error', resolve));
    const deadline = Date.now() + START_TIMEOUT_MS;
    for (;;) {
      const state = await Promise.race([accepts(port), exited, spawnError]);
      // Our haproxy answering its stats socket, not another process that took the port meanwhile.
      if (
        state === true &&
        (await adminCommand(statsSocket, 'show info').catch(() => '')) !== '' &&
        proc.exitCode === null
      ) {
        return config;
      }
      if (state instanceof Error) throw new Error(`Could not run ${HAPROXY}: ${state.message}`);
      if (state === 'exited' || Date.now() > deadline) {
        proc.kill('SIGKILL');
        throw new Error(
          `haproxy on port ${port} did not start (${state === 'exited' ? 'it exited' : 'not accepting in time'}):\n` +
            output.slice(-20).join('\n'),
        );
      }
      await sleep(20);
    }
  };

  // A free port can be taken between the probe and haproxy binding it: try a few.
  let port = 0;
  let config = '';
  let lastError: unknown;
  for (let attempt = 0; attempt < 5; attempt += 1) {
    port = await freePort();
    try {
      config = await launch(port);
      lastError = undefined;
      break;
    } catch (error) {
      lastError = error;
      // Only a port taken meanwhile is worth another try.
      if (!(error instanceof Error) || !/Address already in use|cannot bind/i.test(error.message)) break;
    }
  }
  if (lastError !== undefined) {
    process.removeListener('exit', onExit);
    rmSync(dir, { recursive: true, force: true });
    throw lastError;
  }

  const stats = async (): Promise<BackendStat[]> => parseStats(await adminCommand(statsSocket, 'show stat'));

  return {
    port,
    url: `http://127.0.0.1:${port}`,
    wsUrl: `ws://127.0.0.1:${port}/v1/ws`,
    config,
    stats,
    waitFor: async (name, status, timeoutMs = 10_000) => {
      const started = performance.now();
      for (;;) {
        const stat = (await stats()).find((entry) => entry.name === name);
        if (stat === undefined) throw new Error(`haproxy has no backend named ${name}`);
        // `UP 1/2` is still up (going down), `DOWN 1/2` still down (going up).
        if (stat.status === status) return performance.now() - started;
        if (performance.now() - started > timeoutMs) {
          throw new Error(
            `backend ${name} is ${stat.status} (check ${stat.check}), not ${status}, after ${timeoutMs} ms`,
          );
        }
        await sleep(25);
      }
    },
    output: () => [...output],
    stop: async () => {
      if (stopped) return;
      stopped = true;
      const proc = child;
      if (proc !== undefined && proc.exitCode === null && proc.signalCode === null) {
        const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
        proc.kill('SIGTERM');
        const timer = setTimeout(() => proc.kill('SIGKILL'), 2000);
        await exited;
        clearTimeout(timer);
      }
      process.removeListener('exit', onExit);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** The server rows of `show stat` (CSV whose header line starts with `# `). */
function parseStats(csv: string): BackendStat[] {
  const [header, ...rows] = csv.split('\n').filter(Boolean);
  const columns = (header ?? '').replace(/^# /, '').split(',');
  const at = (row: string[], name: string) => row[columns.indexOf(name)] ?? '';
  return rows
    .map((line) => line.split(','))
    .filter(
      (row) => at(row, 'svname') !== 'FRONTEND' && at(row, 'svname') !== 'BACKEND' && at(row, 'pxname') === 'instances',
    )
    .map((row) => ({
      name: at(row, 'svname'),
      status: at(row, 'status'),
      current: Number(at(row, 'scur')),
      total: Number(at(row, 'stot')),
      check: at(row, 'check_status'),
    }));
}

/** Sends one command to haproxy's stats socket and returns its whole answer. */
function adminCommand(socketPath: string, command: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(socketPath);
    let answer = '';
    socket.setTimeout(2000, () => socket.destroy(new Error(`haproxy stats socket: no answer to "${command}"`)));
    socket.once('error', reject);
    socket.once('connect', () => socket.write(`${command}\n`));
    socket.on('data', (data) => {
      answer += data.toString('utf8');
    });
    socket.once('close', () => resolve(answer));
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
