import { writeFileSync } from 'node:fs';
import { LoadOptions } from '../load/options.js';
import { raiseFileLimit } from '../load/raiseFileLimit.js';
import { buildReport, formatSummary } from '../load/report/LoadReport.js';
import { runLoad } from '../load/runLoad.js';
import { processUsage, startServerProcess } from '../tooling/serverProcess.js';
import { benchFlags } from './benchFlags.js';

/**
 * npm run scale -- [--idle 10000] [--chatting 1000] [--seconds 60]: how many idle connections
 * the server holds and at what memory, then many connections chatting at once, where every
 * generation must end in generation.done or a clear refusal (queue_full, rate_limited).
 */
const { idle, chatting, seconds } = benchFlags(process.argv.slice(2), { idle: 10_000, chatting: 1000, seconds: 60 });
console.error(raiseFileLimit(idle + 100));

const server = await startServerProcess([]);
const baseline = processUsage(server.pid).rssMb;
const connected = async () => {
  const text = await (await fetch(`${server.httpUrl}/metrics`)).text();
  return Number(/^llmchat_connections (\d+)/m.exec(text)?.[1] ?? 0);
};

const idleOptions = LoadOptions.parse({
  url: server.wsUrl,
  connections: idle,
  duration: 60_000,
  scenario: 'idle',
  connectRate: 1000,
});
const idleRun = runLoad(idleOptions);
let peak = { connections: 0, rssMb: baseline };
for (let waited = 0; waited < 55; waited++) {
  await new Promise((resolve) => setTimeout(resolve, 1000));
  const now = { connections: await connected(), rssMb: processUsage(server.pid).rssMb };
  if (now.connections >= peak.connections) peak = now;
  if (now.connections >= idle) break;
}
idleRun.stop();
const idleRecorder = await idleRun.done;
console.log(
  `idle: ${peak.connections} of ${idle} connections held, server RSS ${peak.rssMb} MB (${baseline} MB with none); connection failures ${idleRecorder.connectionFailures}`,
);

await new Promise((resolve) => setTimeout(resolve, 3000));
const chatOptions = LoadOptions.parse({
  url: server.wsUrl,
  connections: chatting,
  duration: seconds * 1000,
  scenario: 'chat',
  maxTokens: 32,
  connectRate: 1000,
});
const chatRecorder = await runLoad(chatOptions).done;
const chatReport = buildReport(chatOptions, chatRecorder, new Date());
const refusals = ['queue_full', 'rate_limited'];
const protocolErrors = Object.entries(chatReport.errors).filter(([code]) => !refusals.includes(code));
console.log(formatSummary(chatReport));
console.log(
  `chat: ${chatting} connections for ${seconds} s: ${Object.values(chatReport.finishes).reduce((a, b) => a + b, 0)} generations done, refusals ${JSON.stringify(Object.fromEntries(Object.entries(chatReport.errors).filter(([code]) => refusals.includes(code))))}, other errors ${JSON.stringify(Object.fromEntries(protocolErrors))}, connection failures ${chatReport.connectionFailures}, server RSS ${processUsage(server.pid).rssMb} MB`,
);
await server.stop();
writeFileSync(
  'scale-report.json',
  `${JSON.stringify({ idle: { asked: idle, peak, baseline }, chat: chatReport }, null, 2)}\n`,
);
process.exit(0);
