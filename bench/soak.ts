import { writeFileSync } from 'node:fs';
import { LoadOptions } from '../load/options.js';
import { buildReport, formatSummary } from '../load/report/LoadReport.js';
import { runLoad } from '../load/runLoad.js';
import { startHaproxy } from '../tooling/haproxy.js';
import { startRedis } from '../tooling/redisServer.js';
import { processUsage, startServerProcess } from '../tooling/serverProcess.js';
import { benchFlags } from './benchFlags.js';

/**
 * npm run soak -- [--minutes 30] [--connections 32] [--store memory|redis] [--instances 1]: a mixed
 * load (chat, cancel, reconnect, slow readers) for a long time, sampling memory every 30 s. With
 * `--store redis` the instances share a private redis-server; with more than one instance HAProxy
 * (round robin, /readyz checks) stands in front. Every process's memory should stay flat.
 */
const { minutes, connections, store, instances } = benchFlags(process.argv.slice(2), {
  minutes: 30,
  connections: 32,
  store: 'memory',
  instances: 1,
});
if (store !== 'memory' && store !== 'redis') throw new Error(`--store must be memory or redis, not ${store}`);
if (instances > 1 && store !== 'redis')
  throw new Error('Many instances share conversations only through --store redis');

const redis = store === 'redis' ? await startRedis() : undefined;
const servers = await Promise.all(
  Array.from({ length: Math.max(1, instances) }, () => startServerProcess([], { STORE: redis?.url ?? 'memory' })),
);
const balancer =
  servers.length > 1
    ? await startHaproxy({
        backends: servers.map((server) => ({ host: '127.0.0.1', port: server.port })),
        servedByHeader: false,
      })
    : undefined;
const processes = [
  ...servers.map((server, index) => ({ name: `server ${index + 1}`, pid: () => server.pid })),
  ...(redis === undefined ? [] : [{ name: 'redis', pid: () => redis.pid() }]),
];

type Sample = { minute: number; rssMb: Record<string, number> };
const samples: Sample[] = [];
const startedAt = Date.now();
const sample = () => {
  const rssMb = Object.fromEntries(processes.map(({ name, pid }) => [name, processUsage(pid()).rssMb]));
  samples.push({ minute: Math.round((Date.now() - startedAt) / 6000) / 10, rssMb });
  console.error(
    `${samples.at(-1)?.minute} min: RSS ${Object.entries(rssMb)
      .map(([n, mb]) => `${n} ${mb} MB`)
      .join(', ')}`,
  );
};
sample();
const sampler = setInterval(sample, 30_000);
const options = LoadOptions.parse({
  url: balancer?.wsUrl ?? servers[0]?.wsUrl,
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
await balancer?.stop();
await Promise.all(servers.map((server) => server.stop()));
await redis?.stop();
const report = buildReport(options, recorder, new Date(startedAt));
console.log(formatSummary(report));
const warm = samples.filter((s) => s.minute >= Math.min(2, minutes / 4));
for (const { name } of processes) {
  const first = warm[0]?.rssMb[name] ?? 0;
  const last = warm.at(-1)?.rssMb[name] ?? 0;
  const max = Math.max(...samples.map((s) => s.rssMb[name] ?? 0));
  console.log(`${name} RSS after warm-up ${first} MB, at the end ${last} MB, max ${max} MB`);
}
console.log(`(${minutes} min, ${connections} connections, store ${store}, ${servers.length} instance(s))`);
writeFileSync('soak-report.json', `${JSON.stringify({ samples, report }, null, 2)}\n`);
process.exit(0);
