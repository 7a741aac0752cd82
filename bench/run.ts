import { availableParallelism, loadavg } from 'node:os';
import { percentilesOf, type RunMeasure, type RunSummary, summarize } from '../tooling/latency.js';
import { startLlamaServer } from '../tooling/llamaServer.js';
import { processUsage, spawnServer } from '../tooling/serverProcess.js';
import { syntheticLlama } from '../tooling/syntheticModels.js';
import { MODEL_PATH } from '../tooling/testModel.js';
import { measureAffinity } from './affinity.js';
import { benchFlags } from './benchFlags.js';
import { runRawEngine } from './rawEngine.js';
import { measureCancelAcks, runServerClients } from './serverClients.js';
import { runSseClients } from './sseClients.js';
import { measureStoreCost, printStoreCost, STORE_COST_DEFAULTS } from './storeCost.js';

const WORKLOAD = { prompt: 'Once upon a time', seed: 42 };
const threads = Math.max(1, availableParallelism() - 1);
/**
 * `--only engines` runs the comparison of engines alone, `--only store` the store-cost section
 * alone (its own flags, `--rounds`, …, pass through). `--models`, `--streams`, `--tokens`,
 * `--repeats` shape the comparison; llama-server joins it when LLAMA_SERVER_BIN is set.
 */
const {
  only,
  models: modelList,
  streams: streamList,
  tokens,
  repeats,
  ...storeCostOptions
} = benchFlags(process.argv.slice(2), {
  only: 'all',
  models: 'tiny,synthetic',
  streams: '1,8,16',
  tokens: 128,
  /** 0: as many as keep each model's part to about a minute (tiny 12, synthetic 2). */
  repeats: 0,
  ...STORE_COST_DEFAULTS,
});
if (only !== 'all' && only !== 'store' && only !== 'engines') {
  process.stderr.write(`--only takes all, engines or store, not "${only}"\n`);
  process.exit(2);
}
const STREAMS = streamList.split(',').map(Number);
const LLAMA_SERVER_BIN = process.env.LLAMA_SERVER_BIN;

const repeatsOf = (model: string) => (repeats > 0 ? repeats : model === 'tiny' ? 12 : 3);

/** Starts the server as a child process (as `npm start` does), runs `work`, stops it. */
async function withServer<T>(
  maxConcurrent: number,
  work: (server: { wsUrl: string; httpUrl: string; pid: number }) => Promise<T>,
  modelPath = MODEL_PATH,
): Promise<T> {
  const server = spawnServer(
    ['--max-concurrent', String(maxConcurrent), '--threads', String(threads), '--resume-grace-ms', '0'],
    { MODEL_PATH: modelPath },
    [],
    'built',
  );
  try {
    const port = await server.port();
    await server.ready();
    const pid = server.child.pid as number;
    return await work({ wsUrl: `ws://127.0.0.1:${port}/v1/ws`, httpUrl: `http://127.0.0.1:${port}`, pid });
  } finally {
    server.child.kill('SIGTERM');
    await server.exited;
  }
}

const fmt = (value: number, digits = 1) => (Number.isFinite(value) ? value.toFixed(digits) : '–');
const row = (cells: Array<string | number>) => `| ${cells.join(' | ')} |`;

const SIDES = ['raw engine', 'server WS', 'server HTTP', 'llama-server'] as const;
type Side = (typeof SIDES)[number];
/** A side's latencies and throughput, and its tokens per second of its process's CPU time (steadier on a busy machine). */
type SideSummary = RunSummary & { tokensPerCpuSecond: number };
type Measured = Partial<Record<Side, SideSummary>>;

/** Runs `measure` (which calls its `onWarm` after its warm-up) and counts the CPU time `cpuMs` reads after the warm-up. */
async function withCpu(cpuMs: () => number, measure: (onWarm: () => void) => Promise<RunMeasure[]>): Promise<SideRuns> {
  let warmCpu = Number.NaN;
  const runs = await measure(() => {
    warmCpu = cpuMs();
  });
  return { runs, cpuMs: cpuMs() - warmCpu };
}

type SideRuns = { runs: RunMeasure[]; cpuMs: number };

function summarizeSide({ runs, cpuMs }: SideRuns): SideSummary {
  const tokensMeasured = runs.reduce((sum, run) => sum + run.tokens, 0);
  return { ...summarize(runs), tokensPerCpuSecond: (tokensMeasured / cpuMs) * 1000 };
}

const ownCpuMs = () => {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
};

/** Rounds the sides take turns in, so that the machine's load drifting during a run weighs on every side alike. */
const ROUNDS = 3;

/** Every side at `streams` streams on one model: node-llama-cpp alone, this server's two paths, llama-server. */
async function measureAt(
  modelPath: string,
  streams: number,
  repeats: number,
  upstream: { url: string; pid: number } | undefined,
): Promise<Measured> {
  const options = { ...WORKLOAD, maxTokens: tokens, streams };
  const collected: Partial<Record<Side, SideRuns>> = {};
  const add = (side: Side, measured: SideRuns) => {
    const soFar = collected[side];
    collected[side] =
      soFar === undefined ? measured : { runs: [...soFar.runs, ...measured.runs], cpuMs: soFar.cpuMs + measured.cpuMs };
  };
  await withServer(
    streams,
    async ({ wsUrl, httpUrl, pid }) => {
      const serverCpuMs = () => processUsage(pid).cpuMs;
      for (let round = 0; round < ROUNDS; round++) {
        const runs = Math.max(1, Math.round(repeats / ROUNDS));
        add(
          'raw engine',
          await withCpu(ownCpuMs, (onWarm) => runRawEngine({ ...options, modelPath, threads }, runs, onWarm)),
        );
        add('server WS', await withCpu(serverCpuMs, (onWarm) => runServerClients({ ...options, wsUrl }, runs, onWarm)));
        add('server HTTP', await withCpu(serverCpuMs, (onWarm) => runSseClients(httpUrl, options, runs, onWarm)));
        if (upstream === undefined) continue;
        add(
          'llama-server',
          await withCpu(
            () => processUsage(upstream.pid).cpuMs,
            (onWarm) => runSseClients(upstream.url, options, runs, onWarm),
          ),
        );
      }
    },
    modelPath,
  );
  const measured: Measured = {};
  for (const side of SIDES) {
    const sideRuns = collected[side];
    if (sideRuns !== undefined) measured[side] = summarizeSide(sideRuns);
  }
  return measured;
}

/**
 * This server against node-llama-cpp alone and against llama-server (same streaming client as the
 * HTTP path), on the tiny and the synthetic model: tokens/s, latencies, their ratios, batch gain.
 */
async function compareEngines(): Promise<void> {
  console.log(
    `${threads} llama.cpp thread(s), ${tokens} tokens per stream, temperature 0, ${repeats || '12 (tiny) or 3'} runs each, in ${ROUNDS} rounds the sides take turns in, each after a short warm-up; ` +
      `llama-server: ${LLAMA_SERVER_BIN ?? 'not set (LLAMA_SERVER_BIN)'}; load average ${loadavg()
        .map((load) => load.toFixed(2))
        .join(' ')}\n`,
  );
  const gains: string[] = [];
  for (const name of modelList.split(',')) {
    const modelPath = name === 'tiny' ? MODEL_PATH : name === 'synthetic' ? syntheticLlama() : name;
    const upstream =
      LLAMA_SERVER_BIN === undefined
        ? undefined
        : await startLlamaServer(LLAMA_SERVER_BIN, {
            model: modelPath,
            parallel: Math.max(...STREAMS),
            slotContext: 512,
            threads,
            alias: 'bench-model',
          });
    const results: Array<{ streams: number; measured: Measured }> = [];
    try {
      for (const streams of STREAMS) {
        const measured = await measureAt(modelPath, streams, repeatsOf(name), upstream).catch((error) => {
          if (upstream !== undefined) console.error(`llama-server's log:\n${upstream.log()}`);
          throw error;
        });
        results.push({ streams, measured });
        const line = SIDES.map((side) => `${side} ${fmt(measured[side]?.tokensPerSecond ?? Number.NaN, 0)}`);
        console.error(`${name} N=${streams}: ${line.join(', ')} tok/s (load ${loadavg()[0]?.toFixed(2)})`);
      }
    } finally {
      await upstream?.stop();
    }
    console.log(`model ${name} (${modelPath})\n`);
    console.log(
      row([
        'N',
        'side',
        'tokens/s',
        'tokens/CPU-s',
        'TTFT p50 ms',
        'TTFT p99 ms',
        'ITL p50 ms',
        'ITL p99 ms',
        'tok/s ÷ llama-server',
        'TTFT p50 ÷ llama-server',
        'tok/s ÷ raw engine',
      ]),
    );
    console.log(row(Array.from({ length: 11 }, () => '---')));
    for (const { streams, measured } of results) {
      const raw = measured['raw engine'];
      const upstreamSummary = measured['llama-server'];
      for (const side of SIDES) {
        const s = measured[side];
        if (s === undefined) continue;
        const isServer = side === 'server WS' || side === 'server HTTP';
        const vsUpstream = upstreamSummary !== undefined && side !== 'llama-server';
        console.log(
          row([
            streams,
            side,
            fmt(s.tokensPerSecond, 0),
            fmt(s.tokensPerCpuSecond, 0),
            fmt(s.ttft.p50),
            fmt(s.ttft.p99),
            fmt(s.itl.p50, 2),
            fmt(s.itl.p99, 2),
            vsUpstream ? fmt(s.tokensPerSecond / upstreamSummary.tokensPerSecond, 2) : '',
            vsUpstream ? fmt(s.ttft.p50 / upstreamSummary.ttft.p50, 2) : '',
            isServer && raw !== undefined ? fmt(s.tokensPerSecond / raw.tokensPerSecond, 2) : '',
          ]),
        );
      }
    }
    const one = results.find((result) => result.streams === 1)?.measured;
    const eight = results.find((result) => result.streams === 8)?.measured;
    if (one !== undefined && eight !== undefined) {
      const gain = SIDES.filter((side) => one[side] !== undefined && eight[side] !== undefined).map((side) => {
        const ratio = (key: 'tokensPerSecond' | 'tokensPerCpuSecond') =>
          fmt((eight[side]?.[key] ?? 0) / (one[side]?.[key] ?? 0), 2);
        return `${side} ${ratio('tokensPerSecond')}× (per CPU-s ${ratio('tokensPerCpuSecond')}×)`;
      });
      gains.push(`${name}: ${gain.join(', ')}`);
    }
    console.log('');
  }
  if (gains.length > 0) console.log(`batch gain (tokens/s at N = 8 over N = 1):\n  ${gains.join('\n  ')}\n`);
}

/** KV affinity and cancel latency on the tiny model. */
async function affinityAndCancel(): Promise<void> {
  const affinity = await withServer(1, ({ wsUrl }) => measureAffinity(wsUrl, 5));
  console.log(`\nsecond turn of a session (${affinity.promptTokens} prompt tokens), time to first token, median of 5:`);
  console.log(
    `  KV cache resident:      ${fmt(affinity.affine.ttftMs)} ms (${affinity.affine.cachedPromptTokens} prompt tokens reused)`,
  );
  console.log(
    `  re-evaluated (evicted): ${fmt(affinity.reevaluated.ttftMs)} ms (${affinity.reevaluated.cachedPromptTokens} reused)`,
  );
  console.log(`  speed-up with affinity: ${fmt(affinity.reevaluated.ttftMs / affinity.affine.ttftMs, 1)}×`);

  const acks = await withServer(8, async ({ wsUrl }) => [
    ...(await measureCancelAcks(wsUrl, 8)),
    ...(await measureCancelAcks(wsUrl, 8)),
    ...(await measureCancelAcks(wsUrl, 8)),
  ]);
  const ack = percentilesOf(acks);
  console.log(
    `\ncancel → cancel.ack with 8 streams running (${ack.count} cancels): p50 ${fmt(ack.p50)} ms, p99 ${fmt(ack.p99)} ms`,
  );
}

async function main(): Promise<void> {
  if (only !== 'store') await compareEngines();
  if (only === 'all') await affinityAndCancel();
  if (only === 'engines') return;
  console.log(`model ${MODEL_PATH}, ${threads} llama.cpp thread(s)`);
  printStoreCost(await measureStoreCost(storeCostOptions, threads));
}

await main();
