import { execFileSync } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { type RunMeasure, summarize } from '../tooling/latency.js';
import { startLlamaServer } from '../tooling/llamaServer.js';
import { processUsage, spawnServer } from '../tooling/serverProcess.js';
import { syntheticLlama } from '../tooling/syntheticModels.js';
import { MODEL_PATH } from '../tooling/testModel.js';
import { benchFlags } from './benchFlags.js';
import { runOnce } from './sseClients.js';

/**
 * npm run bench:upstream (needs LLAMA_SERVER_BIN): the same streaming client (SSE on
 * /v1/chat/completions, N streams at once, temperature 0) against llama-server directly and
 * against this server in front of that llama-server (--upstream), interleaved, for the tiny and
 * the synthetic 85 M model. The gateway's price: tokens/s ratio, added time to first token, and
 * its own CPU time per token streamed (request handling included). `--tiers apart` runs
 * llama-server on the first core and the gateway and the client on the others (as a deployment
 * runs the two tiers on machines of their own); `shared`, the default, lets them share every core.
 */
const {
  repeats,
  tokens,
  streams: streamList,
  models: modelList,
  tiers,
} = benchFlags(process.argv.slice(2), {
  repeats: 3,
  tokens: 128,
  streams: '1,8,16',
  models: 'tiny,synthetic',
  tiers: 'shared',
});
if (tiers !== 'shared' && tiers !== 'apart') {
  process.stderr.write(`--tiers takes shared or apart, not "${tiers}"\n`);
  process.exit(2);
}
const LLAMA_SERVER_BIN = process.env.LLAMA_SERVER_BIN;
if (LLAMA_SERVER_BIN === undefined) {
  process.stderr.write('Set LLAMA_SERVER_BIN to a llama-server binary (docs/operations.md says how to build one).\n');
  process.exit(2);
}
// Apart, llama-server has one core to itself: one thread.
const threads = tiers === 'apart' ? 1 : Math.max(1, availableParallelism() - 1);

/** Binds every thread of a process to `cpus` (taskset's list, e.g. "0" or "1-3"). */
function pin(pid: number, cpus: string): void {
  execFileSync('taskset', ['-a', '-pc', cpus, String(pid)], { stdio: 'ignore' });
}
if (tiers === 'apart') {
  if (availableParallelism() < 2 || process.platform !== 'linux') {
    process.stderr.write('--tiers apart needs Linux (taskset) and at least 2 cores\n');
    process.exit(2);
  }
  // This process and the gateway it starts (which inherits it) keep off the first core.
  pin(process.pid, `1-${availableParallelism() - 1}`);
}
const STREAMS = streamList.split(',').map(Number);
const MAX_STREAMS = Math.max(...STREAMS);

/** One measure of `streams` streams at once against `baseUrl`. */
const run = (baseUrl: string, streams: number): Promise<RunMeasure> =>
  runOnce(baseUrl, { streams, prompt: 'Once upon a time', maxTokens: tokens, seed: 42 });

const fmt = (value: number, digits = 1) => (Number.isFinite(value) ? value.toFixed(digits) : '–');
const row = (cells: Array<string | number>) => `| ${cells.join(' | ')} |`;

const models = modelList.split(',').map((name) => ({
  name,
  path: name === 'tiny' ? MODEL_PATH : syntheticLlama(),
}));
console.log(
  `llama-server ${LLAMA_SERVER_BIN}, ${threads} thread(s), ${tokens} tokens per stream, temperature 0, ${repeats} runs each, interleaved, tiers ${tiers === 'apart' ? 'apart (llama-server on core 0, gateway and client on the rest)' : 'sharing every core'}\n`,
);
console.log(
  row([
    'model',
    'N',
    'direct tok/s',
    'gateway tok/s',
    'ratio',
    'TTFT p50 direct',
    'gateway',
    'added',
    'ITL p50 direct',
    'gateway',
    'ITL p99 direct',
    'gateway',
    'gateway CPU µs a token',
  ]),
);
console.log(row(Array.from({ length: 13 }, () => '---')));
for (const model of models) {
  const llama = await startLlamaServer(LLAMA_SERVER_BIN, {
    model: model.path,
    parallel: MAX_STREAMS,
    slotContext: 512,
    threads,
    alias: 'bench-model',
  });
  if (tiers === 'apart') pin(llama.pid, '0');
  const gateway = spawnServer([], { UPSTREAM: `${llama.url}/v1#slots=${MAX_STREAMS}` }, [], 'built');
  const gatewayUrl = `http://127.0.0.1:${await gateway.port()}`;
  const gatewayPid = gateway.child.pid as number;
  await gateway.ready();
  try {
    for (const streams of STREAMS) {
      const direct: RunMeasure[] = [];
      const through: RunMeasure[] = [];
      let gatewayCpuMs = 0;
      await run(llama.url, streams); // warm-up, not counted
      await run(gatewayUrl, streams);
      for (let repeat = 0; repeat < repeats; repeat++) {
        direct.push(await run(llama.url, streams));
        const cpuBefore = processUsage(gatewayPid).cpuMs;
        through.push(await run(gatewayUrl, streams));
        gatewayCpuMs += processUsage(gatewayPid).cpuMs - cpuBefore;
      }
      const d = summarize(direct);
      const g = summarize(through);
      console.log(
        row([
          model.name,
          streams,
          fmt(d.tokensPerSecond, 0),
          fmt(g.tokensPerSecond, 0),
          fmt(g.tokensPerSecond / d.tokensPerSecond, 2),
          fmt(d.ttft.p50),
          fmt(g.ttft.p50),
          fmt(g.ttft.p50 - d.ttft.p50, 2),
          fmt(d.itl.p50, 2),
          fmt(g.itl.p50, 2),
          fmt(d.itl.p99, 2),
          fmt(g.itl.p99, 2),
          fmt((gatewayCpuMs * 1000) / through.reduce((sum, measure) => sum + measure.tokens, 0), 0),
        ]),
      );
    }
  } finally {
    gateway.child.kill('SIGTERM');
    await gateway.exited;
    await llama.stop();
  }
}
process.exit(0);
