import { spawn } from 'node:child_process';
import { benchFlags } from './benchFlags.js';

/**
 * npm run bench:startup -- [--runs 5]: time from starting the server process to /readyz 200,
 * median of `runs`, for the build `npm start` runs and for the sources through tsx (`npm run dev`).
 */
const { runs } = benchFlags(process.argv.slice(2), { runs: 5 });
const entries = {
  'node dist/server/main.js': ['dist/server/main.js'],
  'tsx server/main.ts': ['--import', 'tsx', 'server/main.ts'],
};

for (const [name, args] of Object.entries(entries)) {
  const times: number[] = [];
  for (let run = 0; run < runs; run++) times.push(await timeToReady(args, 19_300 + run));
  times.sort((a, b) => a - b);
  const median = times[Math.floor(times.length / 2)] ?? 0;
  console.log(`${name}: median ${Math.round(median)} ms to /readyz (${times.map(Math.round).join(', ')})`);
}

async function timeToReady(args: string[], port: number): Promise<number> {
  const started = performance.now();
  const child = spawn(process.execPath, [...args, '--port', String(port), '--log-level', 'warn'], { stdio: 'ignore' });
  for (;;) {
    const ready = await fetch(`http://127.0.0.1:${port}/readyz`).then(
      (response) => response.status === 200,
      () => false,
    );
    if (ready) break;
    if (child.exitCode !== null) throw new Error(`${args.join(' ')} exited with ${child.exitCode}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  const elapsed = performance.now() - started;
  child.kill('SIGTERM');
  await new Promise((resolve) => child.once('exit', resolve));
  return elapsed;
}
