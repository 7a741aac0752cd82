import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { ContextOverflowError, type EngineChunk, EngineError, type EngineRequest } from '../../server/engine/Engine.js';
import { UpstreamPool, type UpstreamPoolOptions } from '../../server/engine/upstream/UpstreamPool.js';
import { FakeUpstream, type FakeUpstreamOptions } from '../doubles/FakeUpstream.js';

const open: Array<{ dispose: () => unknown } | FakeUpstream> = [];
afterEach(async () => {
  for (const thing of open.splice(0)) {
    if (thing instanceof FakeUpstream) await thing.kill().catch(() => undefined);
    else await thing.dispose();
  }
});

async function fake(options: FakeUpstreamOptions = {}) {
  const upstream = await FakeUpstream.start(options);
  open.push(upstream);
  return upstream;
}

async function poolOver(urls: string[], options: Partial<UpstreamPoolOptions> = {}) {
  const logs: Array<Record<string, unknown>> = [];
  const log = pino({ level: 'info' }, { write: (line: string) => logs.push(JSON.parse(line)) });
  const pool = await UpstreamPool.connect({
    upstreams: urls.map((url) => ({ url })),
    healthIntervalMs: 60_000,
    idleTimeoutMs: 5_000,
    cancelWaitMs: 500,
    startTimeoutMs: 0,
    contextSize: 4096,
    log,
    ...options,
  });
  open.push(pool);
  return { pool, logs, said: (msg: string) => logs.filter((entry) => entry.msg === msg) };
}

function request(overrides: Partial<EngineRequest> = {}) {
  const chunks: EngineChunk[] = [];
  const controller = new AbortController();
  const made: EngineRequest = {
    slot: 0,
    format: 'chat',
    messages: [{ role: 'user', content: 'Hi' }],
    params: { maxTokens: 16 },
    signal: controller.signal,
    onChunk: (chunk) => chunks.push(chunk),
    ...overrides,
  };
  return { request: made, chunks, abort: () => controller.abort() };
}

/** Waits for a condition that other events make true, polling briefly. */
async function until(condition: () => boolean, what: string, withinMs = 3000) {
  const deadline = Date.now() + withinMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`Not within ${withinMs} ms: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

describe('an upstream pool', () => {
  it('learns capacity from /props or /readyz, takes #slots over them, and assumes 8 with a warning otherwise', async () => {
    const llama = await fake({ identity: 'props', slots: 3, models: ['a'] });
    const ours = await fake({ identity: 'readyz', slots: 5, models: ['b'] });
    const plain = await fake({ models: ['c'] });
    const { pool, said } = await poolOver([llama.url, ours.url, plain.url]);
    expect(pool.info).toMatchObject({ modelName: 'a', contextSize: 1024, sequences: 3 + 5 + 8, backend: 'upstream' });
    expect(pool.models()).toEqual(['a', 'b', 'c']);
    expect(said('upstream capacity unknown: assuming it; set #slots=N in its URL')).toEqual([
      expect.objectContaining({ upstream: plain.url, slots: 8 }),
    ]);
    const told = await UpstreamPool.connect({
      upstreams: [{ url: llama.url, slots: 2 }],
      healthIntervalMs: 60_000,
      idleTimeoutMs: 5_000,
      cancelWaitMs: 500,
      startTimeoutMs: 0,
      contextSize: 4096,
      log: pino({ level: 'silent' }),
    });
    open.push(told);
    expect(told.info.sequences).toBe(2);
  });

  it('streams content and reasoning as one token a chunk, with usage, finish and the sampling params sent', async () => {
    const upstream = await fake({
      identity: 'props',
      script: () => ({
        kind: 'answer',
        pieces: ['reasoning:Hm', 'Once', ' upon'],
        finish: 'length',
        usage: { prompt_tokens: 11, cached_tokens: 6 },
      }),
    });
    const { pool } = await poolOver([upstream.url]);
    const { request: made, chunks } = request({ params: { maxTokens: 3, temperature: 0, seed: 1 } });
    expect(await pool.generate(made)).toEqual({ stop: 'length', promptTokens: 11, cachedPromptTokens: 6 });
    expect(chunks).toEqual([
      { text: 'Hm', channel: 'reasoning', tokens: 1 },
      { text: 'Once', channel: 'content', tokens: 1 },
      { text: ' upon', channel: 'content', tokens: 1 },
    ]);
    expect(upstream.requests[0]).toMatchObject({
      model: 'fake-model',
      stream: true,
      stream_options: { include_usage: true },
      max_tokens: 3,
      temperature: 0,
      seed: 1,
      cache_prompt: true,
    });
  });

  it('tries another upstream once when the first fails before its first token', async () => {
    const failing = await fake({ script: () => ({ kind: 'status', status: 500, error: { message: 'Broke' } }) });
    const working = await fake();
    const { pool, said } = await poolOver([failing.url, working.url]);
    for (let turn = 0; turn < 4; turn++) {
      const { request: made, chunks } = request();
      expect(await pool.generate(made)).toMatchObject({ stop: 'stop' });
      expect(chunks.map((c) => c.text).join('')).toBe('Hello there');
    }
    // New conversations take turns, so some started on the failing one; each of those was retried once.
    expect(failing.requests.length).toBeGreaterThan(0);
    expect(working.requests).toHaveLength(4);
    const retries = said('upstream failed before the first token; trying another');
    expect(retries).toHaveLength(failing.requests.length);
    expect(retries[0]).toMatchObject({ upstream: failing.url, reason: 'HTTP 500: Broke' });
  });

  it('sends again on a new connection a request whose kept-alive connection the upstream had closed', async () => {
    const upstream = await fake({ closeAfterStream: true });
    const { pool, said } = await poolOver([upstream.url]);
    // Back to back, so each next request finds the connection the last answer ended on still in the pool.
    for (let turn = 0; turn < 6; turn++) {
      const { request: made, chunks } = request();
      expect(await pool.generate(made)).toMatchObject({ stop: 'stop' });
      expect(chunks.map((c) => c.text).join('')).toBe('Hello there');
    }
    expect(upstream.requests).toHaveLength(6);
    expect(said('upstream failed before the first token; trying another')).toEqual([]);
  });

  it('refuses, without retrying, a prompt the upstream says is too long, and names other refusals upstream_error', async () => {
    let index = 0;
    const statuses = [
      { message: 'the request exceeds the available context size', type: 'exceed_context_size_error' },
      { message: 'Bad temperature' },
    ];
    const upstream = await fake({
      script: () => ({ kind: 'status', status: 400, error: statuses[index++] ?? { message: '?' } }),
    });
    const other = await fake();
    const { pool } = await poolOver([upstream.url, other.url]);
    const first = pool.generate(request({ affinityKey: 's1' }).request);
    await expect(first).rejects.toBeInstanceOf(ContextOverflowError);
    const second = await pool.generate(request({ affinityKey: 's1' }).request).catch((error: unknown) => error);
    expect(second).toBeInstanceOf(EngineError);
    expect(second).toMatchObject({
      code: 'upstream_error',
      message: expect.stringContaining('HTTP 400: Bad temperature'),
    });
    expect(other.requests).toHaveLength(0);
  });

  it('ends with upstream_error after the first token when the answer breaks off, and ejects that upstream', async () => {
    const breaking = await fake({ script: () => ({ kind: 'cut', pieces: ['Once', ' upon'] }) });
    const spare = await fake();
    const { pool, said } = await poolOver([breaking.url, spare.url]);
    const { request: made, chunks } = request();
    const failure = await pool.generate(made).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(EngineError);
    expect(failure).toMatchObject({ code: 'upstream_error', message: 'The upstream server broke off its answer' });
    expect(chunks.map((c) => c.text)).toEqual(['Once', ' upon']);
    expect(spare.requests).toHaveLength(0);
    expect(said('upstream ejected')).toEqual([expect.objectContaining({ upstream: breaking.url })]);
    // Ejected: the next generation goes to the other one.
    await pool.generate(request().request);
    expect(spare.requests).toHaveLength(1);
  });

  it('fails a stalled answer after the idle timeout instead of hanging', async () => {
    const stalling = await fake({ script: () => ({ kind: 'stall', pieces: ['Once'] }) });
    const { pool } = await poolOver([stalling.url], { idleTimeoutMs: 150 });
    const began = performance.now();
    const failure = await pool.generate(request().request).catch((error: unknown) => error);
    expect(failure).toMatchObject({ code: 'upstream_error', message: 'The upstream server sent nothing for too long' });
    expect(performance.now() - began).toBeLessThan(2000);
  });

  it('routes a request that names a model to the upstreams that serve it, and one that names none to the default', async () => {
    const a = await fake({ models: ['model-a'] });
    const b = await fake({ models: ['model-b', 'model-b-large'] });
    const { pool } = await poolOver([a.url, b.url]);
    expect(pool.models()).toEqual(['model-a', 'model-b', 'model-b-large']);
    for (const model of ['model-b', 'model-b-large', 'model-b']) {
      await pool.generate(request({ params: { maxTokens: 4, model } }).request);
    }
    for (let turn = 0; turn < 2; turn++) await pool.generate(request().request);
    expect(b.requests.map((body) => body.model)).toEqual(['model-b', 'model-b-large', 'model-b']);
    expect(a.requests.map((body) => body.model)).toEqual(['model-a', 'model-a']);
  });

  it('keeps a conversation on the upstream that served it while it has room, and spreads new ones', async () => {
    const a = await fake();
    const b = await fake();
    const { pool } = await poolOver([a.url, b.url]);
    for (const key of ['s1', 's2', 's1', 's2', 's1']) await pool.generate(request({ affinityKey: key }).request);
    const keys = (upstream: FakeUpstream) => upstream.requests.length;
    expect([keys(a), keys(b)].sort()).toEqual([2, 3]);
  });

  it('never sends an upstream more than its slots: while the only healthy one is full, a generation waits', async () => {
    const busy = await fake({
      slots: 1,
      identity: 'props',
      script: () => ({ kind: 'answer', pieces: ['a', 'b', 'c'], delayMs: 25 }),
    });
    const dead = await fake({ slots: 1, identity: 'props' });
    const { pool } = await poolOver([busy.url, dead.url]);
    await dead.kill();
    const first = pool.generate(request().request);
    const second = pool.generate(request().request).catch((error: unknown) => error);
    await Promise.all([first, second]);
    // The second went to the dead one first (least loaded), was retried on the busy one, and waited for it.
    expect(busy.requests).toHaveLength(2);
    expect(await second).toMatchObject({ stop: 'stop' });
    let most = 0;
    const third = pool.generate(request().request);
    const fourth = pool.generate(request().request);
    const watch = setInterval(() => (most = Math.max(most, busy.running)), 5);
    await Promise.all([third, fourth]);
    clearInterval(watch);
    expect(most).toBe(1);
    // A waiting generation can be cancelled.
    const fifth = pool.generate(request().request);
    const { request: waiting, abort } = request();
    const sixth = pool.generate(waiting);
    abort();
    expect(await sixth).toEqual({ stop: 'aborted', promptTokens: 0, cachedPromptTokens: 0 });
    await fifth;
  });

  it('closes the upstream request on cancel and returns once the upstream shows it stopped', async () => {
    const upstream = await fake({
      identity: 'readyz',
      script: () => ({ kind: 'answer', pieces: Array.from({ length: 100 }, () => 'x'), delayMs: 20 }),
    });
    const { pool } = await poolOver([upstream.url]);
    const { request: made, chunks, abort } = request();
    const result = pool.generate(made);
    await until(() => chunks.length > 0, 'a first token');
    abort();
    expect(await result).toMatchObject({ stop: 'aborted' });
    expect(upstream.running).toBe(0);
    expect(upstream.abandoned).toBe(1);
  });

  it('ejects an upstream whose health check fails, fails fast while none serves, and brings it back when it answers', async () => {
    const upstream = await fake();
    const { pool, said } = await poolOver([upstream.url], { healthIntervalMs: 50 });
    await upstream.kill();
    await until(() => said('upstream ejected').length === 1, 'the ejection');
    const failure = await pool.generate(request().request).catch((error: unknown) => error);
    expect(failure).toMatchObject({ code: 'upstream_error', message: expect.stringContaining('out of service') });
    await upstream.restart();
    await until(() => said('upstream restored').length === 1, 'the restoration');
    expect(await pool.generate(request().request)).toMatchObject({ stop: 'stop' });
  });

  it('sends an upstream its API key on every request, probes and health checks included', async () => {
    const keyed = await fake({ apiKey: 'sk-upstream', identity: 'readyz', slots: 3 });
    const pool = await UpstreamPool.connect({
      upstreams: [{ url: keyed.url, apiKey: 'sk-upstream' }],
      healthIntervalMs: 60_000,
      idleTimeoutMs: 5_000,
      cancelWaitMs: 500,
      startTimeoutMs: 0,
      contextSize: 4096,
      log: pino({ level: 'silent' }),
    });
    open.push(pool);
    expect(pool.info.sequences).toBe(3);
    expect(await pool.generate(request().request)).toMatchObject({ stop: 'stop' });
    await expect(poolOver([keyed.url])).rejects.toThrow(/No upstream answered/);
  });

  it('fails to start when no upstream answers within the start timeout', async () => {
    const gone = await fake();
    const url = gone.url;
    await gone.kill();
    await expect(poolOver([url], { startTimeoutMs: 100, healthIntervalMs: 50 })).rejects.toThrow(
      /No upstream answered/,
    );
  });
});
