import { LoadOptions } from '../load/options.js';
import { runLoad } from '../load/runLoad.js';
import { processUsage, startServerProcess } from '../tooling/serverProcess.js';
import { benchFlags } from './benchFlags.js';

/**
 * npm run bench:transports -- [--seconds 20] [--connections 32]: the same chat load against the server on
 * uWebSockets.js and on ws, one after the other in one run: throughput and server CPU per token.
 */
const { seconds, connections } = benchFlags(process.argv.slice(2), { seconds: 20, connections: 32 });
const rows: string[] = [];
const results: Record<string, { tokensPerSecond: number; cpuUsPerToken: number }> = {};
for (const transport of ['uws', 'ws'] as const) {
  const server = await startServerProcess(['--transport', transport]);
  const options = LoadOptions.parse({
    url: server.wsUrl,
    connections,
    duration: seconds * 1000,
    scenario: 'chat',
    maxTokens: 64,
  });
  const before = processUsage(server.pid);
  const recorder = await runLoad(options).done;
  const after = processUsage(server.pid);
  await server.stop();
  const wallS = (performance.now() - recorder.startedAt) / 1000;
  const tokensPerSecond = recorder.tokens / wallS;
  const cpuUsPerToken = ((after.cpuMs - before.cpuMs) * 1000) / Math.max(1, recorder.tokens);
  results[transport] = { tokensPerSecond, cpuUsPerToken };
  rows.push(`| ${transport} | ${Math.round(tokensPerSecond)} | ${Math.round(cpuUsPerToken)} | ${after.rssMb} |`);
}
console.log(`${connections} connections chatting for ${seconds} s each (64 tokens per answer)\n`);
console.log('| transport | tokens/s | server CPU µs per token | server RSS MB |\n| --- | --- | --- | --- |');
for (const row of rows) console.log(row);
const { uws, ws } = results;
if (uws && ws)
  console.log(
    `\nws/uws: throughput ${(ws.tokensPerSecond / uws.tokensPerSecond).toFixed(2)}, CPU per token ${(ws.cpuUsPerToken / uws.cpuUsPerToken).toFixed(2)}`,
  );
process.exit(0);
