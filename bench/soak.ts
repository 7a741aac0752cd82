import { writeFileSync } from 'node:fs';
import { LoadOptions } from '../load/options.js';
import { buildReport, formatSummary } from '../load/report/LoadReport.js';
import { runLoad } from '../load/runLoad.js';
import { processUsage, startServerProcess } from '../tooling/serverProcess.js';
import { benchFlags } from './benchFlags.js';

/**
 * npm run soak -- [--minutes 30] [--connections 32]: a mixed load (chat, cancel, reconnect, slow readers)
 * against the server for a long time, sampling its memory every 30 s. Memory should stay flat.
 */
const { minutes, connections } = benchFlags(process.argv.slice(2), { minutes: 30, connections: 32 });
const server = await startServerProcess([]);
const samples: Array<{ minute: number; rssMb: number }> = [];
const startedAt = Date.now();
const sample = () => {
  const { rssMb } = processUsage(server.pid);
  samples.push({ minute: Math.round((Date.now() - startedAt) / 6000) / 10, rssMb });
  console.error(`${samples.at(-1)?.minute} min: server RSS ${rssMb} MB`);
};
sample();
const sampler = setInterval(sample, 30_000);
const options = LoadOptions.parse({
  url: server.wsUrl,
  connections,
  duration: minutes * 60_000,
  scenario: 'mixed',
  mix: 'chat=6,cancel=2,reconnect=1,slow-reader=1',
  maxTokens: 64,
  thinkMs: 200,
});
const recorder = await runLoad(options).done;
clearInterval(sampler);
sample();
await server.stop();
const report = buildReport(options, recorder, new Date(startedAt));
const warm = samples.filter((s) => s.minute >= Math.min(2, minutes / 4));
const first = warm[0]?.rssMb ?? 0;
const last = warm.at(-1)?.rssMb ?? 0;
const max = Math.max(...samples.map((s) => s.rssMb));
console.log(formatSummary(report));
console.log(
  `\nserver RSS after warm-up ${first} MB, at the end ${last} MB, max ${max} MB (${minutes} min, ${connections} connections)`,
);
writeFileSync('soak-report.json', `${JSON.stringify({ samples, report }, null, 2)}\n`);
process.exit(0);
