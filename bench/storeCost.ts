import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ChatClient } from '../client/ChatClient.js';
import { nodeSockets } from '../client/node.js';
import type { GenerationDone, ServerFrame } from '../protocol/index.js';
import { kebabCase } from '../server/cli/parseFlags.js';
import { median, percentilesOf, StreamClock } from '../tooling/latency.js';
import { startRedis } from '../tooling/redisServer.js';
import { processUsage, type SpawnedServer, spawnServer } from '../tooling/serverProcess.js';
import { MODEL_PATH } from '../tooling/testModel.js';
import { benchFlags } from './benchFlags.js';

/**
 * What the conversation store costs the server, memory against SQLite against Redis, in one run:
 * the same chat workload against a fresh server per store, the stores interleaved round by round
 * (memory, sqlite, redis, memory, …) so that drift of a noisy machine falls on all three alike.
 * Per store: the server process's CPU per turn and per 1000 tokens (median of the rounds), what
 * that adds to memory's; the same for the server's main thread alone (the event loop, where the
 * store's calls run; llama.cpp's threads are left out, and with them most of the noise); time to
 * first token over every turn of every round; and for Redis the redis-server process's own CPU.
 *
 * Each client keeps one session for `turnsPerSession` turns back to back, then deletes it and
 * opens the next: a session's cost per turn grows with its history (attention over the context,
 * and a full re-evaluation once the history outgrows the context), which would bury the store's
 * share, so conversations are kept short and the work per turn stays the same all run long.
 */

export const STORE_COST_DEFAULTS = {
  /** Rounds of memory, sqlite, redis. */
  rounds: 3,
  /** Concurrent clients, one connection each (the server gets as many sequences). */
  clients: 4,
  /** Turns per client per store and round; 0 sizes it to `seconds` from a calibration run. */
  turns: 0,
  /** Turns of one session before the client deletes it and opens the next. */
  turnsPerSession: 4,
  /** Measured seconds per store and round when `turns` is 0. */
  seconds: 12,
};
export type StoreCostOptions = typeof STORE_COST_DEFAULTS;

const STORES = ['memory', 'sqlite', 'redis'] as const;
type StoreKind = (typeof STORES)[number];

const PARAMS = { maxTokens: 64, temperature: 0, seed: 42 } as const;
/** A session's messages, in order (the same in every session, so every round does the same work). */
const MESSAGES = ['Once upon a time', 'What happened next?', 'And then?', 'How did it end?'];

/** One store's measured run. */
type StoreRun = {
  store: StoreKind;
  turns: number;
  tokens: number;
  wallMs: number;
  serverCpuMs: number;
  /** The server's main thread alone (the event loop: protocol, sessions, store calls; not llama.cpp's threads). */
  loopCpuMs: number;
  /** redis-server's CPU over the same window; undefined for the other stores. */
  redisCpuMs: number | undefined;
  ttftMs: number[];
  /** Turns whose generation.queued never reached the client (see oneTurn). */
  unrouted: number;
};

/** One CPU figure of a store, ms per turn: the median of the rounds and what it adds to memory's. */
export type CpuCost = {
  median: number;
  min: number;
  max: number;
  /** Median less memory's median; and the smallest and largest of each round's run less that round's memory run. */
  added: number;
  addedPerRound: { min: number; max: number };
  /** Median over memory's median. */
  ratio: number;
};

export type StoreCostRow = {
  store: StoreKind;
  turnsPerRun: number;
  tokensPerTurn: number;
  /** The server process's CPU per turn. */
  server: CpuCost;
  /** The same per 1000 tokens (median of the rounds), and µs per token added to memory's. */
  serverPer1000Tokens: number;
  addedUsPerToken: number;
  /** The server's main thread (event loop) alone, per turn. */
  loop: CpuCost;
  ttft: ReturnType<typeof percentilesOf>;
  /** redis-server's own CPU per turn (median of the rounds); undefined for the other stores. */
  redisCpuPerTurn: number | undefined;
  tokensPerSecond: number;
  /** Turns, over all rounds, whose generation.queued never came. */
  unrouted: number;
  totalTurns: number;
};

export type StoreCostReport = {
  threads: number;
  clients: number;
  turnsPerClient: number;
  turnsPerSession: number;
  rounds: number;
  rows: StoreCostRow[];
  elapsedMs: number;
};

const progress = (line: string) => process.stderr.write(`store cost: ${line}\n`);

/** The server as bench/run.ts starts it (withServer's flags), on the store `STORE` names. */
async function startServer(
  store: string,
  clients: number,
  threads: number,
): Promise<{ server: SpawnedServer; wsUrl: string }> {
  const server = spawnServer(
    ['--max-concurrent', String(clients), '--threads', String(threads), '--resume-grace-ms', '0'],
    { STORE: store },
    [],
    'built',
  );
  try {
    const port = await server.port();
    await server.ready();
    return { server, wsUrl: `ws://127.0.0.1:${port}/v1/ws` };
  } catch (error) {
    server.child.kill('SIGKILL');
    throw error;
  }
}

async function stopServer(server: SpawnedServer): Promise<void> {
  if (server.child.exitCode === null && server.child.signalCode === null) server.child.kill('SIGTERM');
  await server.exited;
}

/** CPU ms (user + system) of a process's main thread, from /proc (as processUsage reads the whole process). */
function mainThreadCpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/task/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11] ?? 0) + Number(fields[12] ?? 0)) * 10;
}

/**
 * redis-server's pid: tooling/redisServer.ts does not expose it, so it is the child of this
 * process whose command line names the port (Redis sets its title to `redis-server HOST:PORT`).
 */
function redisPid(port: number): number {
  const title = new RegExp(`:${port}(\\s|\\0|$)`);
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid !== process.pid) continue;
      const argv = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
      const portArg = argv.indexOf('--port');
      if (title.test(argv.join(' ')) || (portArg >= 0 && argv[portArg + 1] === String(port))) return Number(entry);
    } catch {
      // The process ended while it was read: not ours.
    }
  }
  throw new Error(`No redis-server child of this process listens on port ${port}`);
}

/** Longest a turn may take before the benchmark gives up (a lost frame must not hang it). */
const TURN_TIMEOUT_MS = 60_000;

/** What the clients measured: a clock per turn, and the turns whose `generation.queued` never came. */
type Workload = { clocks: StreamClock[]; wallMs: number; unrouted: number };

/**
 * One turn on `client`: the clock starts as chat.send goes out. Frames are taken off the
 * connection as they arrive, not through the ClientGeneration: each client has one turn in flight,
 * so every token and generation.done on it is this turn's, even when the server never sent the
 * `generation.queued` that tells the client the genId (then the ClientGeneration would wait for
 * ever; such turns are counted as `unrouted`). A refusal still rejects through the generation.
 */
async function oneTurn(
  client: ChatClient,
  listen: (onFrame: ((frame: ServerFrame) => void) | undefined) => void,
  sessionId: string,
  content: string,
): Promise<{ clock: StreamClock; unrouted: boolean }> {
  const clock = new StreamClock(performance.now());
  let lastSeq = 0;
  let timer: NodeJS.Timeout | undefined;
  const observed = new Promise<GenerationDone>((resolve) => {
    listen((frame) => {
      if (frame.type === 'token') {
        clock.chunk(frame.seq - lastSeq);
        lastSeq = frame.seq;
      } else if (frame.type === 'generation.done') resolve(frame);
    });
  });
  const generation = client.chat(sessionId, content, PARAMS);
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`A turn took over ${TURN_TIMEOUT_MS} ms`)), TURN_TIMEOUT_MS);
  });
  try {
    const done = await Promise.race([observed, generation.done, timeout]);
    if (done.finish === 'error' || done.finish === 'interrupted' || clock.tokens === 0) {
      throw new Error(`A turn ended with ${done.finish}${done.error ? `: ${done.error.message}` : ''}`);
    }
    return { clock, unrouted: generation.genId === undefined };
  } finally {
    clearTimeout(timer);
    listen(undefined);
  }
}

/**
 * `clients` clients at once, each doing `turns` turns back to back, a new session every
 * `turnsPerSession` turns (deleted after its last turn). Every turn is checked: a refused or
 * failed one ends the benchmark rather than counting as cheap.
 */
async function chatWorkload(wsUrl: string, clients: number, turns: number, turnsPerSession: number): Promise<Workload> {
  const connections = await Promise.all(
    Array.from({ length: clients }, () => ChatClient.connect(wsUrl, { createSocket: nodeSockets() })),
  );
  const clocks: StreamClock[] = [];
  let unrouted = 0;
  const startedAt = performance.now();
  try {
    await Promise.all(
      connections.map(async (client) => {
        let onFrame: ((frame: ServerFrame) => void) | undefined;
        client.observe((frame) => onFrame?.(frame));
        const listen = (next: typeof onFrame) => {
          onFrame = next;
        };
        let sessionId: string | undefined;
        for (let turn = 0; turn < turns; turn++) {
          const inSession = turn % turnsPerSession;
          if (inSession === 0) {
            if (sessionId !== undefined) await client.closeSession(sessionId, { forget: true });
            sessionId = (await client.openSession()).sessionId;
          }
          const content = MESSAGES[inSession % MESSAGES.length] ?? '';
          const result = await oneTurn(client, listen, sessionId ?? '', content);
          clocks.push(result.clock);
          if (result.unrouted) unrouted++;
        }
        if (sessionId !== undefined) await client.closeSession(sessionId, { forget: true });
      }),
    );
    return { clocks, wallMs: performance.now() - startedAt, unrouted };
  } finally {
    await Promise.all(connections.map((client) => client.close()));
  }
}

/** One store's run: a fresh server (and a fresh SQLite file or Redis), a warm-up, then the measured turns. */
async function runStore(store: StoreKind, options: StoreCostOptions, turns: number, threads: number) {
  let setting: string = store;
  let cleanUp = async () => {};
  let redis: number | undefined;
  if (store === 'sqlite') {
    const dir = await mkdtemp(join(tmpdir(), 'llmchat-bench-store-'));
    setting = `sqlite:${join(dir, 'bench.sqlite')}`;
    cleanUp = async () => rmSync(dir, { recursive: true, force: true });
  } else if (store === 'redis') {
    const server = await startRedis();
    setting = server.url;
    redis = redisPid(server.port);
    cleanUp = () => server.stop();
  }
  try {
    const { server, wsUrl } = await startServer(setting, options.clients, threads);
    try {
      const pid = server.child.pid as number;
      // Warm-up, not counted: a session's worth of turns per client (JIT, allocations, first writes).
      await chatWorkload(wsUrl, options.clients, options.turnsPerSession, options.turnsPerSession);
      const serverBefore = processUsage(pid).cpuMs;
      const loopBefore = mainThreadCpuMs(pid);
      const redisBefore = redis === undefined ? 0 : processUsage(redis).cpuMs;
      const { clocks, wallMs, unrouted } = await chatWorkload(wsUrl, options.clients, turns, options.turnsPerSession);
      const run: StoreRun = {
        store,
        unrouted,
        turns: clocks.length,
        tokens: clocks.reduce((sum, clock) => sum + clock.tokens, 0),
        wallMs,
        serverCpuMs: processUsage(pid).cpuMs - serverBefore,
        loopCpuMs: mainThreadCpuMs(pid) - loopBefore,
        redisCpuMs: redis === undefined ? undefined : processUsage(redis).cpuMs - redisBefore,
        ttftMs: clocks.map((clock) => clock.ttftMs ?? Number.NaN),
      };
      return run;
    } catch (error) {
      const tail = server.output.slice(-10).join('\n');
      throw new Error(`${store} store: ${(error as Error).message}\nthe server's last lines:\n${tail}`, {
        cause: error,
      });
    } finally {
      await stopServer(server);
    }
  } finally {
    await cleanUp();
  }
}

/** Turns per client that take about `seconds` on the memory store, from a short timed run. */
async function calibrate(options: StoreCostOptions, threads: number): Promise<number> {
  const { server, wsUrl } = await startServer('memory', options.clients, threads);
  try {
    const sample = options.turnsPerSession * 2;
    await chatWorkload(wsUrl, options.clients, options.turnsPerSession, options.turnsPerSession);
    const { wallMs } = await chatWorkload(wsUrl, options.clients, sample, options.turnsPerSession);
    const sessions = Math.max(1, Math.round((options.seconds * 1000 * sample) / wallMs / options.turnsPerSession));
    return sessions * options.turnsPerSession;
  } finally {
    await stopServer(server);
  }
}

export async function measureStoreCost(
  options: StoreCostOptions = STORE_COST_DEFAULTS,
  threads = Math.max(1, availableParallelism() - 1),
): Promise<StoreCostReport> {
  for (const key of ['rounds', 'clients', 'turnsPerSession'] as const) {
    if (!Number.isInteger(options[key]) || options[key] < 1)
      throw new Error(`--${kebabCase(key)} must be a whole number ≥ 1`);
  }
  if (!Number.isInteger(options.turns)) throw new Error('--turns must be a whole number (0: sized to --seconds)');
  if (options.turns === 0 && !(options.seconds > 0)) throw new Error('--seconds must be above 0');
  const startedAt = performance.now();
  const turns = options.turns > 0 ? options.turns : await calibrate(options, threads);
  progress(`${options.clients} clients × ${turns} turns per store and round, ${options.rounds} rounds`);
  const runs: StoreRun[] = [];
  for (let round = 1; round <= options.rounds; round++) {
    for (const store of STORES) {
      const run = await runStore(store, options, turns, threads);
      runs.push(run);
      const redisNote = run.redisCpuMs === undefined ? '' : `, redis-server ${run.redisCpuMs} ms`;
      const unroutedNote = run.unrouted === 0 ? '' : `; ${run.unrouted} turns without generation.queued`;
      progress(
        `round ${round} ${store}: ${run.turns} turns in ${(run.wallMs / 1000).toFixed(1)} s, server ${run.serverCpuMs} ms CPU (event loop ${run.loopCpuMs})${redisNote}${unroutedNote}`,
      );
    }
  }

  const ofStore = (store: StoreKind) => runs.filter((run) => run.store === store);
  const memory = ofStore('memory');
  /** Rounds of a store, in order, against memory's rounds in the same order. */
  const cost = (mine: readonly StoreRun[], metric: (run: StoreRun) => number): CpuCost => {
    const values = mine.map(metric);
    const base = memory.map(metric);
    const paired = values.map((value, round) => value - (base[round] ?? Number.NaN));
    return {
      median: median(values),
      min: Math.min(...values),
      max: Math.max(...values),
      added: median(values) - median(base),
      addedPerRound: { min: Math.min(...paired), max: Math.max(...paired) },
      ratio: median(values) / median(base),
    };
  };
  const per1000 = (run: StoreRun) => (run.serverCpuMs / run.tokens) * 1000;
  const rows = STORES.map((store): StoreCostRow => {
    const mine = ofStore(store);
    const redisCpu = mine.flatMap((run) => (run.redisCpuMs === undefined ? [] : [run.redisCpuMs / run.turns]));
    return {
      store,
      turnsPerRun: median(mine.map((run) => run.turns)),
      tokensPerTurn: median(mine.map((run) => run.tokens / run.turns)),
      server: cost(mine, (run) => run.serverCpuMs / run.turns),
      serverPer1000Tokens: median(mine.map(per1000)),
      addedUsPerToken: median(mine.map(per1000)) - median(memory.map(per1000)),
      loop: cost(mine, (run) => run.loopCpuMs / run.turns),
      ttft: percentilesOf(mine.flatMap((run) => run.ttftMs)),
      redisCpuPerTurn: redisCpu.length === 0 ? undefined : median(redisCpu),
      tokensPerSecond: median(mine.map((run) => (run.tokens / run.wallMs) * 1000)),
      unrouted: mine.reduce((sum, run) => sum + run.unrouted, 0),
      totalTurns: mine.reduce((sum, run) => sum + run.turns, 0),
    };
  });
  return {
    threads,
    clients: options.clients,
    turnsPerClient: turns,
    turnsPerSession: options.turnsPerSession,
    rounds: options.rounds,
    rows,
    elapsedMs: performance.now() - startedAt,
  };
}

const fmt = (value: number, digits = 1) => (Number.isFinite(value) ? value.toFixed(digits) : '–');
const signed = (value: number, digits = 1) => (value >= 0 ? '+' : '') + fmt(value, digits);
const row = (cells: Array<string | number>) => `| ${cells.join(' | ')} |`;

const spread = (cost: CpuCost) => `${fmt(cost.median, 2)} (${fmt(cost.min, 2)}–${fmt(cost.max, 2)})`;
const added = (cost: CpuCost) =>
  `${signed(cost.added, 2)} (${signed(cost.addedPerRound.min, 1)}…${signed(cost.addedPerRound.max, 1)})`;

export function printStoreCost(report: StoreCostReport): void {
  console.log(
    `\nstore cost: ${report.clients} clients, each ${report.turnsPerClient} turns of ${PARAMS.maxTokens} tokens (a new session every ${report.turnsPerSession}) per store and round, ${report.rounds} rounds interleaved; CPU per turn is the median of the rounds (min–max), added is against memory (each round against its own memory run), TTFT over all turns`,
  );
  console.log(
    row([
      'store',
      'server CPU ms/turn',
      'added ms/turn',
      '× memory',
      'ms/1000 tokens',
      'added µs/token',
      'event loop ms/turn',
      'event loop added',
      'redis-server ms/turn',
      'TTFT p50 ms',
      'TTFT p99 ms',
    ]),
  );
  console.log(row(['---', '---', '---', '---', '---', '---', '---', '---', '---', '---', '---']));
  for (const r of report.rows) {
    const base = r.store === 'memory';
    console.log(
      row([
        r.store,
        spread(r.server),
        base ? '' : added(r.server),
        base ? '' : fmt(r.server.ratio, 3),
        fmt(r.serverPer1000Tokens, 0),
        base ? '' : signed(r.addedUsPerToken, 1),
        spread(r.loop),
        base ? '' : `${added(r.loop)}, ${fmt(r.loop.ratio, 2)}×`,
        r.redisCpuPerTurn === undefined ? '' : fmt(r.redisCpuPerTurn, 2),
        fmt(r.ttft.p50),
        fmt(r.ttft.p99),
      ]),
    );
  }
  const memory = report.rows.find((r) => r.store === 'memory');
  const redis = report.rows.find((r) => r.store === 'redis');
  if (memory !== undefined && redis?.redisCpuPerTurn !== undefined) {
    const total = redis.server.median + redis.redisCpuPerTurn;
    console.log(
      `redis all in (server + redis-server): ${fmt(total, 2)} ms/turn, ${signed(total - memory.server.median, 2)} vs memory (${fmt(total / memory.server.median, 3)}×)`,
    );
  }
  for (const r of report.rows) {
    if (r.unrouted === 0) continue;
    console.log(
      `${r.store}: ${r.unrouted} of ${r.totalTurns} turns got their tokens and generation.done but no generation.queued (the client could not have routed them)`,
    );
  }
}

/** `node --import tsx bench/storeCost.ts [--rounds 3 --clients 4 --turns 0 --turns-per-session 4 --seconds 12]` */
if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const options = benchFlags(process.argv.slice(2), STORE_COST_DEFAULTS);
  const threads = Math.max(1, availableParallelism() - 1);
  console.log(`model ${MODEL_PATH}, ${threads} llama.cpp thread(s)`);
  const report = await measureStoreCost(options, threads);
  printStoreCost(report);
  progress(`took ${(report.elapsedMs / 1000).toFixed(0)} s`);
}
