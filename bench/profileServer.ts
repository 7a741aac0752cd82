import { mkdtempSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { spawnServer } from '../tooling/serverProcess.js';
import { MODEL_PATH } from '../tooling/testModel.js';
import { benchFlags } from './benchFlags.js';
import { runServerClients } from './serverClients.js';

/**
 * npm run bench:profile: the server under `--streams` WebSocket streams (tiny model by default)
 * with node's CPU profiler on; prints the functions with the most self time, and where the
 * .cpuprofile is (open it in Chrome DevTools or speedscope for the call tree).
 */
const { streams, tokens, repeats, model, top } = benchFlags(process.argv.slice(2), {
  streams: 16,
  tokens: 128,
  repeats: 10,
  model: MODEL_PATH,
  top: 25,
});

type ProfileNode = {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
};
type CpuProfile = { nodes: ProfileNode[]; samples: number[]; timeDeltas: number[] };

const dir = mkdtempSync(join(tmpdir(), 'server-profile-'));
const server = spawnServer(
  ['--max-concurrent', String(streams), '--resume-grace-ms', '0'],
  { MODEL_PATH: model },
  ['--cpu-prof', '--cpu-prof-dir', dir],
  'built',
);
const port = await server.port();
await server.ready();
const runs = await runServerClients(
  { wsUrl: `ws://127.0.0.1:${port}/v1/ws`, streams, prompt: 'Once upon a time', maxTokens: tokens, seed: 42 },
  repeats,
);
server.child.kill('SIGTERM');
await server.exited;
const tokensStreamed = runs.reduce((sum, run) => sum + run.tokens, 0);

// The largest profile is the main thread's (a worker thread, if any, writes its own).
const file = readdirSync(dir)
  .filter((name) => name.endsWith('.cpuprofile'))
  .sort((a, b) => statSync(join(dir, b)).size - statSync(join(dir, a)).size)[0];
if (file === undefined) throw new Error(`no profile written in ${dir}`);
const profile = JSON.parse(readFileSync(join(dir, file), 'utf8')) as CpuProfile;
const selfUs = new Map<number, number>();
for (const [index, id] of profile.samples.entries()) {
  selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[index] ?? 0));
}
const byFunction = new Map<string, number>();
let totalUs = 0;
for (const node of profile.nodes) {
  const us = selfUs.get(node.id) ?? 0;
  totalUs += us;
  const { functionName, url, lineNumber } = node.callFrame;
  const where = url === '' ? '' : ` ${relative(process.cwd(), url.replace('file://', ''))}:${lineNumber + 1}`;
  const key = `${functionName || '(anonymous)'}${where}`;
  byFunction.set(key, (byFunction.get(key) ?? 0) + us);
}
const busyUs = totalUs - (byFunction.get('(idle)') ?? 0);
console.log(`${join(dir, file)}`);
console.log(
  `${streams} streams × ${tokens} tokens × ${repeats} runs: ${tokensStreamed} tokens; main thread busy ${(busyUs / 1000).toFixed(0)} ms of ${(totalUs / 1000).toFixed(0)} ms, ${(busyUs / tokensStreamed).toFixed(1)} µs a token\n`,
);
console.log('| self ms | µs a token | % of busy | function |\n| --- | --- | --- | --- |');
const busyEntries = [...byFunction.entries()].filter(([name]) => name !== '(idle)');
for (const [name, us] of busyEntries.sort((a, b) => b[1] - a[1]).slice(0, top)) {
  console.log(
    `| ${(us / 1000).toFixed(1)} | ${(us / tokensStreamed).toFixed(2)} | ${((us / busyUs) * 100).toFixed(1)} | ${name} |`,
  );
}
