import { availableParallelism } from 'node:os';
import { percentilesOf, type RunSummary, summarize } from '../tooling/latency.js';
import { spawnServer } from '../tooling/serverProcess.js';
import { MODEL_PATH } from '../tooling/testModel.js';
import { measureAffinity } from './affinity.js';
import { benchFlags } from './benchFlags.js';
import { runRawEngine } from './rawEngine.js';
import { measureCancelAcks, runServerClients } from './serverClients.js';
import { measureStoreCost, printStoreCost, STORE_COST_DEFAULTS } from './storeCost.js';

const STREAMS = [1, 8, 16];
const REPEATS = 5;
const WORKLOAD = { prompt: 'Once upon a time', maxTokens: 128, seed: 42 };
const threads = Math.max(1, availableParallelism() - 1);
/** `--only store` runs the store-cost section alone; its own flags (`--rounds`, …) pass through. */
const { only, ...storeCostOptions } = benchFlags(process.argv.slice(2), { only: 'all', ...STORE_COST_DEFAULTS });
if (only !== 'all' && only !== 'store') {
  process.stderr.write(`--only takes all or store, not "${only}"\n`);
  process.exit(2);
}

/** Starts the server as a child process (as `npm start` does), runs `work`, stops it. */
async function withServer<T>(maxConcurrent: number, work: (wsUrl: string) => Promise<T>): Promise<T> {
  const server = spawnServer([
    '--max-concurrent',
    String(maxConcurrent),
    '--threads',
    String(threads),
    '--resume-grace-ms',
    '0',
  ]);
  try {
    const port = await server.port();
    await server.ready();
    return await work(`ws://127.0.0.1:${port}/v1/ws`);
  } finally {
    server.child.kill('SIGTERM');
    await server.exited;
  }
}

const fmt = (value: number, digits = 1) => (Number.isFinite(value) ? value.toFixed(digits) : '–');
const row = (cells: Array<string | number>) => `| ${cells.join(' | ')} |`;

/** Raw engine against the server, KV affinity, cancel latency. */
async function engineAndServer(): Promise<void> {
  console.log(
    `model ${MODEL_PATH}, ${threads} llama.cpp thread(s), ${WORKLOAD.maxTokens} tokens per stream, temperature 0, ${REPEATS} runs each\n`,
  );
  const results: Array<{ streams: number; raw: RunSummary; server: RunSummary }> = [];
  for (const streams of STREAMS) {
    const options = { ...WORKLOAD, streams };
    const raw = summarize(await runRawEngine({ ...options, modelPath: MODEL_PATH, threads }, REPEATS));
    const server = summarize(await withServer(streams, (wsUrl) => runServerClients({ ...options, wsUrl }, REPEATS)));
    results.push({ streams, raw, server });
    console.error(
      `N=${streams}: raw ${fmt(raw.tokensPerSecond, 0)} tok/s, server ${fmt(server.tokensPerSecond, 0)} tok/s`,
    );
  }

  console.log(row(['N', 'side', 'tokens/s', 'TTFT p50 ms', 'TTFT p99 ms', 'ITL p50 ms', 'ITL p99 ms', 'server/raw']));
  console.log(row(['---', '---', '---', '---', '---', '---', '---', '---']));
  for (const { streams, raw, server } of results) {
    for (const [side, s] of [
      ['raw engine', raw],
      ['server', server],
    ] as const) {
      const ratio = side === 'server' ? fmt(server.tokensPerSecond / raw.tokensPerSecond, 2) : '';
      console.log(
        row([
          streams,
          side,
          fmt(s.tokensPerSecond, 0),
          fmt(s.ttft.p50),
          fmt(s.ttft.p99),
          fmt(s.itl.p50, 2),
          fmt(s.itl.p99, 2),
          ratio,
        ]),
      );
    }
  }

  const affinity = await withServer(1, (wsUrl) => measureAffinity(wsUrl, 5));
  console.log(`\nsecond turn of a session (${affinity.promptTokens} prompt tokens), time to first token, median of 5:`);
  console.log(
    `  KV cache resident:      ${fmt(affinity.affine.ttftMs)} ms (${affinity.affine.cachedPromptTokens} prompt tokens reused)`,
  );
  console.log(
    `  re-evaluated (evicted): ${fmt(affinity.reevaluated.ttftMs)} ms (${affinity.reevaluated.cachedPromptTokens} reused)`,
  );
  console.log(`  speed-up with affinity: ${fmt(affinity.reevaluated.ttftMs / affinity.affine.ttftMs, 1)}×`);

  const acks = await withServer(8, async (wsUrl) => [
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
  if (only === 'all') await engineAndServer();
  else console.log(`model ${MODEL_PATH}, ${threads} llama.cpp thread(s)`);
  printStoreCost(await measureStoreCost(storeCostOptions, threads));
}

await main();
