import { execFileSync } from 'node:child_process';

/**
 * Raises this process's open-files limit to its hard limit (each connection is a file
 * descriptor), with util-linux's prlimit. Says what it did, or why it could not.
 */
export function raiseFileLimit(needed: number): string {
  try {
    const read = () =>
      execFileSync('prlimit', ['--pid', String(process.pid), '--nofile', '--output=SOFT,HARD', '--noheadings'], {
        encoding: 'utf8',
      })
        .trim()
        .split(/\s+/)
        .map((value) => (value === 'unlimited' ? Number.POSITIVE_INFINITY : Number(value)));
    const [soft = 0, hard = 0] = read();
    if (soft >= needed + 64) return `open-files limit ${soft} is enough`;
    const target = Number.isFinite(hard) ? hard : needed + 1024;
    execFileSync('prlimit', ['--pid', String(process.pid), `--nofile=${target}:${target}`]);
    const [now = 0] = read();
    return now >= needed + 64
      ? `raised the open-files limit from ${soft} to ${now}`
      : `the open-files limit is ${now} (hard limit ${hard}): fewer than the ${needed} connections asked for; raise it with ulimit -n`;
  } catch (error) {
    return `could not check or raise the open-files limit (${error instanceof Error ? error.message.split('\n')[0] : error}); raise it with ulimit -n if connections fail`;
  }
}
