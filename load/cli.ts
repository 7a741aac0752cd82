import { readFileSync, writeFileSync } from 'node:fs';
import { FlagError, parseFlags } from '../server/cli/parseFlags.js';
import { LoadOptions } from './options.js';
import { probeServer } from './probeServer.js';
import { raiseFileLimit } from './raiseFileLimit.js';
import { formatMs } from './report/format.js';
import { buildReport, formatComparison, formatSummary, type LoadReport } from './report/LoadReport.js';
import { renderComparisonHtml, renderHtml } from './report/renderHtml.js';
import { runLoad } from './runLoad.js';

/** npm run load -- --url ws://127.0.0.1:8080/v1/ws --connections 50 --duration 60s --scenario mixed */
async function main(argv: string[]): Promise<number> {
  if (argv[0] === '--compare') return compare(argv.slice(1));
  let flags: Record<string, string>;
  try {
    flags = parseFlags(argv, Object.keys(LoadOptions.shape));
  } catch (error) {
    if (error instanceof FlagError) return usage(error.message);
    throw error;
  }
  const parsed = LoadOptions.safeParse(flags);
  if (!parsed.success) return usage(parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('\n'));
  const options = parsed.data;
  console.error(raiseFileLimit(options.connections));
  const server = await probeServer(options);
  for (const problem of server.problems) console.error(`could not record the server's ${problem}`);
  const startedAt = new Date();
  const live = process.stderr.isTTY;
  const run = runLoad(options, (recorder) => {
    if (!live) return;
    const last = recorder.series.at(-1);
    const elapsed = Math.round((performance.now() - recorder.startedAt) / 1000);
    const errors = [...recorder.errors.values()].reduce((sum, n) => sum + n, 0);
    process.stderr.write(
      `\r${elapsed}s  requests ${recorder.requests}  tokens/s ${last?.tokens ?? 0}  TTFT p50 ${last === undefined || last.ttft.count === 0 ? '–' : formatMs(last.ttft.p50)}  errors ${errors}  conn failures ${recorder.connectionFailures}   `,
    );
  });
  process.once('SIGINT', () => {
    process.stderr.write('\nstopping (Ctrl-C); reporting what was measured…\n');
    run.stop();
  });
  const recorder = await run.done;
  if (live) process.stderr.write('\n');
  const report = buildReport(options, recorder, startedAt, server);
  writeFileSync(options.json, `${JSON.stringify(report, null, 2)}\n`);
  writeFileSync(options.html, renderHtml(report));
  console.log(formatSummary(report));
  console.log(`\nwrote ${options.json} and ${options.html}`);
  return 0;
}

/** --compare a.json b.json [--html compare.html]: a table on stdout and both runs on the same charts. */
function compare(argv: string[]): number {
  const [pathA, pathB, ...rest] = argv;
  if (pathA === undefined || pathB === undefined || pathB.startsWith('--'))
    return usage('--compare needs two report files');
  let flags: Record<string, string>;
  try {
    flags = parseFlags(rest, ['html']);
  } catch (error) {
    if (error instanceof FlagError) return usage(error.message);
    throw error;
  }
  const [a, b] = [pathA, pathB].map((path) => JSON.parse(readFileSync(path, 'utf8')) as LoadReport) as [
    LoadReport,
    LoadReport,
  ];
  const html = flags.html ?? 'load-report.compare.html';
  writeFileSync(html, renderComparisonHtml(a, b));
  console.log(formatComparison(a, b));
  console.log(`\nwrote ${html}`);
  return 0;
}

function usage(problem: string): number {
  console.error(`${problem}\n\nusage: npm run load -- --url ws://127.0.0.1:8080/v1/ws [--target ws|openai-sse] [--connections N]
  [--duration 60s] [--scenario chat|cancel|reconnect|slow-reader|idle|burst|bot|mixed] [--mix chat=6,cancel=2]
  [--rate N/s | --think-ms MS] [--turns N] [--bot-sessions N] [--max-tokens N] [--cancel-after K] [--seed N] [--api-key KEY]
  [--json load-report.json] [--html load-report.html]
       npm run load -- --compare a.json b.json [--html load-report.compare.html]`);
  return 2;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
