import type { LoadOptions } from './options.js';
import { Recorder } from './Recorder.js';
import { type RunContext, runWsUser, seededRandom } from './scenarios.js';
import { runSseUser } from './sseUser.js';

export type RunHandle = { done: Promise<Recorder>; stop: () => void };

/**
 * Runs the load: opens `connections` virtual users (ramped at `connectRate` per second), lets
 * them work until `duration` ends or stop() is called, then closes everything.
 */
export function runLoad(options: LoadOptions, onSecond: (recorder: Recorder) => void = () => {}): RunHandle {
  const recorder = new Recorder();
  const startedAt = performance.now();
  let stopped = false;
  let stopNow: () => void = () => {};
  const stoppedPromise = new Promise<void>((resolve) => (stopNow = resolve));
  const stop = () => {
    recorder.endLoad();
    stopped = true;
    stopNow();
  };
  const ctx: RunContext = {
    options,
    recorder,
    pace: pacer(options.rate, () => stopped),
    stopped: () => stopped || performance.now() - startedAt >= options.duration,
    random: seededRandom(options.seed),
  };
  const done = (async () => {
    const ticker = everySecond(recorder.startedAt, () => {
      recorder.tick();
      onSecond(recorder);
    });
    const deadline = setTimeout(stop, options.duration);
    const users: Array<Promise<void>> = [];
    const runUser = options.target === 'ws' ? runWsUser : runSseUser;
    for (let index = 0; index < options.connections && !stopped; index++) {
      users.push(runUser(ctx, index).catch(() => recorder.error('harness')));
      if ((index + 1) % Math.max(1, Math.round(options.connectRate / 10)) === 0) await sleep(100);
    }
    await Promise.race([Promise.all(users), stoppedPromise]);
    stop();
    // Users stop at their next step; give in-flight answers a moment, then report regardless.
    await Promise.race([Promise.all(users), sleep(2000)]);
    ticker.stop();
    clearTimeout(deadline);
    recorder.tick();
    return recorder;
  })();
  return { done, stop };
}

/**
 * Calls `fn` on each whole second after `origin` (performance.now() time). Unlike setInterval, the
 * lateness of one call does not push the later ones: the series' seconds stay whole seconds.
 */
function everySecond(origin: number, fn: () => void): { stop: () => void } {
  let timer: NodeJS.Timeout | undefined;
  const schedule = () => {
    const now = performance.now();
    const next = origin + (Math.floor((now - origin) / 1000) + 1) * 1000;
    timer = setTimeout(() => {
      fn();
      schedule();
    }, next - now);
  };
  schedule();
  return { stop: () => clearTimeout(timer) };
}

/** Open-loop pacing: requests leave at `rate` per second over all users, whatever the answers do. */
function pacer(rate: number | undefined, stopped: () => boolean): () => Promise<void> {
  if (rate === undefined) return () => Promise.resolve();
  const interval = 1000 / rate;
  let next = performance.now();
  return async () => {
    const at = Math.max(next, performance.now());
    next = at + interval;
    const wait = at - performance.now();
    if (wait > 0 && !stopped()) await sleep(wait);
  };
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms).unref());
