import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnServer } from '../../tooling/serverProcess.js';
import { FakeUpstream } from '../doubles/FakeUpstream.js';
import { chat, collect, openSession, startChat } from '../helpers/conversation.js';
import { startTestServer } from '../helpers/startTestServer.js';
import { TestClient } from '../helpers/TestClient.js';

/**
 * An instance of this server as an upstream: the tiny model, two sequences, one llama.cpp thread.
 * One that is killed and restarted on its port runs on the ws transport: uWebSockets.js listens
 * without SO_REUSEADDR, so a killed one's connections in TIME_WAIT keep its port for a minute.
 */
async function startUpstream(transport: 'uws' | 'ws', port = 0) {
  const server = spawnServer([
    '--port',
    String(port),
    '--transport',
    transport,
    '--max-concurrent',
    '2',
    '--threads',
    '1',
  ]);
  const bound = await server.port();
  await server.ready();
  return { server, port: bound, url: `http://127.0.0.1:${bound}/v1`, root: `http://127.0.0.1:${bound}` };
}
type UpstreamProcess = Awaited<ReturnType<typeof startUpstream>>;

/** The sum of one metric's samples on an upstream (0 when absent). */
async function metric(upstream: UpstreamProcess, name: string): Promise<number> {
  const text = await (await fetch(`${upstream.root}/metrics`)).text();
  return text
    .split('\n')
    .filter((line) => line.startsWith(`${name} `) || line.startsWith(`${name}{`))
    .reduce((sum, line) => sum + Number(line.slice(line.lastIndexOf(' ') + 1)), 0);
}

const FINISHED = 'llmchat_e2e_request_latency_seconds_count';
const RUNNING = 'llmchat_num_requests_running';

/** Waits for a log line of the gateway, by its message (and a field check). */
async function logged(lines: string[], msg: string, where: (entry: Record<string, unknown>) => boolean = () => true) {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const found = lines
      .map((line) => JSON.parse(line) as Record<string, unknown>)
      .find((e) => e.msg === msg && where(e));
    if (found !== undefined) return found;
    if (Date.now() > deadline) throw new Error(`No "${msg}" in the log within 15 s`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe('a server in front of upstream engines (two instances of this server)', () => {
  const upstreams: UpstreamProcess[] = [];
  let gateway: Awaited<ReturnType<typeof startTestServer>>;
  const logLines: string[] = [];
  let client: TestClient;

  beforeAll(async () => {
    upstreams.push(...(await Promise.all([startUpstream('uws'), startUpstream('ws')])));
    gateway = await startTestServer(
      { upstream: upstreams.map((u) => u.url).join(','), upstreamHealthIntervalMs: 200, upstreamIdleTimeoutMs: 5000 },
      { logLines },
    );
    client = await TestClient.connect(gateway.wsUrl);
  }, 60_000);
  afterAll(async () => {
    await client?.close();
    await gateway?.stop();
    for (const { server } of upstreams) server.child.kill('SIGKILL');
    await Promise.all(upstreams.map(({ server }) => server.exited));
  });

  /** Which upstream ran the work done by `act`, from their counters of finished generations. */
  async function servedBy<T>(act: () => Promise<T>): Promise<{ result: T; upstream: number }> {
    const before = await Promise.all(upstreams.map((u) => metric(u, FINISHED)));
    const result = await act();
    const after = await Promise.all(upstreams.map((u) => metric(u, FINISHED)));
    const moved = after.map((count, index) => count - (before[index] ?? 0));
    expect(moved.reduce((sum, n) => sum + n, 0)).toBe(1);
    return { result, upstream: moved.indexOf(1) };
  }

  it("loads no model, lists the upstreams' models, describes the default in welcome, and refuses unknown ones", async () => {
    expect(
      await logged(
        logLines,
        'upstream engines: no local model is loaded; --model, --model-path, --max-concurrent, --gpu, --threads and --context-size (unless an upstream does not say) do not apply',
      ),
    ).toMatchObject({
      upstreams: upstreams.map((u) => u.url),
    });
    expect(client.welcome.model).toEqual({ name: 'stories260K', contextSize: 2048, reasoning: false });
    const listed = (await (await fetch(`${gateway.httpUrl}/v1/models`)).json()) as { data: Array<{ id: string }> };
    expect(listed.data.map((m) => m.id)).toEqual(['stories260K']);
    const ready = (await (await fetch(`${gateway.httpUrl}/readyz`)).json()) as { model: Record<string, unknown> };
    expect(ready.model).toMatchObject({ modelName: 'stories260K', sequences: 4, backend: 'upstream' });

    const { sessionId } = await openSession(client);
    client.send({ type: 'chat.send', id: 'bad-model', sessionId, content: 'Hi', params: { model: 'gpt-9' } });
    expect(await client.next('error', (f) => f.id === 'bad-model')).toMatchObject({
      code: 'not_found',
      message: expect.stringContaining('available: "stories260K"'),
    });
    const named = await chat(client, sessionId, 'Once upon a time', {
      maxTokens: 12,
      temperature: 0,
      model: 'stories260K',
    });
    expect(named.done.finish).toBe('length');
    expect(named.tokens.at(-1)?.seq).toBe(12);
    const refused = await fetch(`${gateway.httpUrl}/v1/chat/completions`, {
      method: 'POST',
      body: JSON.stringify({ model: 'gpt-9', messages: [{ role: 'user', content: 'Hi' }] }),
    });
    expect(refused.status).toBe(404);
    expect(await refused.json()).toMatchObject({
      error: { code: 'not_found', message: expect.stringContaining('stories260K') },
    });
  });

  it("streams the OpenAI API through the pool with the upstream's usage", async () => {
    const response = await fetch(`${gateway.httpUrl}/v1/chat/completions`, {
      method: 'POST',
      body: JSON.stringify({
        model: 'stories260K',
        messages: [{ role: 'user', content: 'The little dog' }],
        max_tokens: 10,
        temperature: 0,
        stream: true,
        stream_options: { include_usage: true },
      }),
    });
    expect(response.status).toBe(200);
    const events = (await response.text()).split('\n\n').filter((e) => e.startsWith('data: {'));
    const usage = JSON.parse((events.at(-1) as string).slice(6)).usage;
    expect(usage).toMatchObject({ completion_tokens: 10 });
    expect(usage.prompt_tokens).toBeGreaterThan(0);
  });

  it("sends each session's next turn back to the upstream that served its last, where its cache is warm", async () => {
    const sessions = await Promise.all([openSession(client), openSession(client), openSession(client)]);
    const first: number[] = [];
    for (const { sessionId } of sessions) {
      const turn = () => chat(client, sessionId, 'Tell me about a cat.', { maxTokens: 30, temperature: 0 });
      first.push((await servedBy(turn)).upstream);
    }
    // New conversations spread over both upstreams.
    expect(new Set(first).size).toBe(2);
    for (const [index, { sessionId }] of sessions.entries()) {
      const turn = () => chat(client, sessionId, 'And then?', { maxTokens: 10, temperature: 0 });
      const { result, upstream } = await servedBy(turn);
      expect(upstream).toBe(first[index]);
      expect(result.done.usage.cachedPromptTokens).toBeGreaterThan(0);
    }
  });

  it("frees the upstream's sequence before cancel.ack", async () => {
    const { sessionId } = await openSession(client);
    for (let round = 0; round < 3; round++) {
      const genId = await startChat(client, sessionId, 'Once upon a time', { maxTokens: 1500, temperature: 0 });
      await client.next('token', (f) => f.genId === genId);
      expect((await Promise.all(upstreams.map((u) => metric(u, RUNNING)))).reduce((a, b) => a + b)).toBe(1);
      client.send({ type: 'generation.cancel', id: `stop-${round}`, genId });
      const ack = await client.next('cancel.ack', (f) => f.id === `stop-${round}`);
      expect(ack.status).toBe('cancelled');
      expect(await Promise.all(upstreams.map((u) => metric(u, RUNNING)))).toEqual([0, 0]);
      expect((await collect(client, genId)).done.finish).toBe('cancelled');
    }
  });

  it('ends a generation with upstream_error when its upstream dies mid answer, ejects it, and takes it back once it is restarted', async () => {
    // Two long answers at once: one on each upstream (the least loaded takes the second).
    const sessions = await Promise.all([openSession(client), openSession(client)]);
    const params = { maxTokens: 1500, temperature: 0 };
    const genIds = await Promise.all(
      sessions.map(({ sessionId }) => startChat(client, sessionId, 'Once upon a time', params)),
    );
    await Promise.all(genIds.map((genId) => client.next('token', (f) => f.genId === genId)));
    expect(await Promise.all(upstreams.map((u) => metric(u, RUNNING)))).toEqual([1, 1]);
    const [survivor, dying] = upstreams as [UpstreamProcess, UpstreamProcess];
    dying.server.child.kill('SIGKILL');
    const answers = await Promise.all(genIds.map((genId) => collect(client, genId)));
    const failed = answers.filter((answer) => answer.done.finish === 'error');
    expect(failed).toHaveLength(1);
    expect(failed[0]?.done.error).toMatchObject({
      code: 'upstream_error',
      message: 'The upstream server broke off its answer',
    });
    expect(failed[0]?.tokens.length).toBeGreaterThan(0);
    // The other answer, on the other upstream, was not disturbed.
    expect(answers.find((answer) => answer !== failed[0])?.done.finish).toMatch(/^(length|stop)$/);
    await logged(logLines, 'upstream ejected', (e) => e.upstream === dying.url);

    // The survivor serves meanwhile.
    const before = await metric(survivor, FINISHED);
    const { sessionId: other } = await openSession(client);
    expect((await chat(client, other, 'A dog ran.', { maxTokens: 5 })).done.finish).toBe('length');
    expect(await metric(survivor, FINISHED)).toBe(before + 1);

    await dying.server.exited;
    const restarted = await startUpstream('ws', dying.port);
    upstreams[1] = restarted;
    await logged(logLines, 'upstream restored', (e) => e.upstream === dying.url);
    // Two at once: one of them goes to the restarted upstream.
    const { sessionId: third } = await openSession(client);
    await Promise.all([
      chat(client, other, 'And then?', { maxTokens: 40 }),
      chat(client, third, 'A cat sat.', { maxTokens: 40 }),
    ]);
    expect(await metric(restarted, FINISHED)).toBe(1);
  }, 60_000);
});

describe('retry before the first token', () => {
  let real: UpstreamProcess;
  let failing: FakeUpstream;
  let gateway: Awaited<ReturnType<typeof startTestServer>>;
  const logLines: string[] = [];

  beforeAll(async () => {
    failing = await FakeUpstream.start({
      models: ['stories260K'],
      slots: 2,
      identity: 'props',
      script: () => ({ kind: 'status', status: 500, error: { message: 'Broke' } }),
    });
    real = await startUpstream('uws');
    gateway = await startTestServer({ upstream: [failing.url, real.url] }, { logLines });
  }, 60_000);
  afterAll(async () => {
    await gateway?.stop();
    await failing?.kill();
    real?.server.child.kill('SIGKILL');
    await real?.server.exited;
  });

  it('answers every request when one upstream accepts connections but fails them, trying the other once', async () => {
    const client = await TestClient.connect(gateway.wsUrl);
    const sessions = await Promise.all([1, 2, 3, 4].map(() => openSession(client)));
    const answers = await Promise.all(
      sessions.map(({ sessionId }) => chat(client, sessionId, 'The sun', { maxTokens: 8 })),
    );
    for (const answer of answers) expect(answer.done.finish).toBe('length');
    expect(failing.requests.length).toBeGreaterThan(0);
    const retries = logLines.filter((line) => line.includes('upstream failed before the first token; trying another'));
    expect(retries).toHaveLength(failing.requests.length);
    await client.close();
  });
});

describe.skipIf(process.env.LLAMA_SERVER_BIN === undefined)('in front of llama-server (LLAMA_SERVER_BIN)', () => {
  it('discovers its slots, streams through it, and frees its slot before cancel.ack', async () => {
    const { startLlamaServer } = await import('../../tooling/llamaServer.js');
    const llama = await startLlamaServer(process.env.LLAMA_SERVER_BIN as string, { parallel: 2 });
    const gateway = await startTestServer({ upstream: `${llama.url}/v1` });
    try {
      const client = await TestClient.connect(gateway.wsUrl);
      expect(client.welcome.model.contextSize).toBeGreaterThan(0);
      const ready = (await (await fetch(`${gateway.httpUrl}/readyz`)).json()) as { model: Record<string, unknown> };
      expect(ready.model).toMatchObject({ sequences: 2, backend: 'upstream' });
      const { sessionId } = await openSession(client);
      const answer = await chat(client, sessionId, 'Once upon a time', { maxTokens: 16, temperature: 0 });
      expect(answer.done.finish).toBe('length');
      expect(answer.done.usage.promptTokens).toBeGreaterThan(0);
      const second = await chat(client, sessionId, 'And then?', { maxTokens: 8, temperature: 0 });
      expect(second.done.usage.cachedPromptTokens).toBeGreaterThan(0);
      const genId = await startChat(client, sessionId, 'Once upon a time', { maxTokens: 1500, temperature: 0 });
      await client.next('token', (f) => f.genId === genId);
      client.send({ type: 'generation.cancel', id: 'stop', genId });
      await client.next('cancel.ack', (f) => f.id === 'stop');
      const slots = (await (await fetch(`${llama.url}/slots`)).json()) as Array<{ is_processing: boolean }>;
      expect(slots.filter((slot) => slot.is_processing)).toEqual([]);
      await client.close();
      // llama-server closes the connection after each streamed answer: requests back to back must not fail on it.
      for (let turn = 0; turn < 6; turn++) {
        const response = await fetch(`${gateway.httpUrl}/v1/chat/completions`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ messages: [{ role: 'user', content: 'Hi' }], max_tokens: 2, stream: true }),
        });
        expect(response.status).toBe(200);
        expect(await response.text()).toContain('[DONE]');
      }
    } finally {
      await gateway.stop();
      await llama.stop();
    }
  }, 60_000);
});
