import { setTimeout as delay } from 'node:timers/promises';
import { readRunning } from './probeUpstream.js';
import type { Upstream } from './Upstream.js';

/**
 * After a cancelled request's connection is closed, waits until the upstream's own gauge of running
 * generations is down to what this pool still runs there, so that its sequence is free again
 * before the cancel is acknowledged. Exact while this pool is the upstream's only client; with
 * other clients the gauge may stay higher, and the wait ends at `withinMs`. Returns whether it saw
 * the generation gone (false at once for an upstream without a readable gauge, or with `withinMs` 0).
 */
export async function awaitCancelTaken(upstream: Upstream, withinMs: number): Promise<boolean> {
  const { load } = upstream;
  if (load === undefined || withinMs <= 0) return false;
  const until = performance.now() + withinMs;
  for (let pause = 1; ; pause = Math.min(pause * 2, 20)) {
    const left = until - performance.now();
    if (left <= 0) return false;
    const running = await readRunning(upstream.url, load, upstream.get, left);
    if (running === undefined) return false;
    if (running <= upstream.live) return true;
    await delay(Math.min(pause, Math.max(0, until - performance.now())));
  }
}
