import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ChatClient, ClientError, ReconnectingClient, type TokenChunk } from '../../client/index.js';
import { nodeSockets } from '../../client/node.js';
import { type ChatServer, createChatServer } from '../../server/index.js';
import { EchoEngine } from '../doubles/EchoEngine.js';
import { TcpProxy } from '../helpers/TcpProxy.js';

const KEY = 'sk-client-test-0123456789';
const sentence = (words: number, tag: string) => Array.from({ length: words }, (_, i) => `${tag}${i}`).join(' ');

describe('the typed client, on the echo engine double', () => {
  let server: ChatServer;
  let url: string;
  const engine = new EchoEngine({ tokenDelayMs: 2 });
  beforeAll(async () => {
    server = createChatServer({
      config: { port: 0, store: 'memory', apiKeys: KEY, resumeGraceMs: 10_000, maxConcurrent: 8 },
      engine,
      logger: pino({ level: 'silent' }),
    });
    const { port } = await server.listen();
    await server.ready;
    url = `ws://127.0.0.1:${port}/v1/ws`;
  });
  afterAll(() => server.close());

  it('runs many sessions and generations at once on one connection, each answer routed to its own stream', async () => {
    const client = await ChatClient.connect(url, { createSocket: nodeSockets({ apiKey: KEY }) });
    const sessions = await Promise.all(Array.from({ length: 6 }, () => client.openSession()));
    const answers = await Promise.all(
      sessions.map(async ({ sessionId }, index) => {
        const generation = client.chat(sessionId, sentence(20, `s${index}w`));
        const chunks: TokenChunk[] = [];
        for await (const chunk of generation) chunks.push(chunk);
        return { index, text: chunks.map((chunk) => chunk.text).join(''), done: await generation.done };
      }),
    );
    for (const { index, text, done } of answers) {
      expect(text).toBe(sentence(20, `s${index}w`));
      expect(done).toMatchObject({ finish: 'stop', usage: { completionTokens: 20 } });
    }
    expect(await client.ping()).toBeGreaterThan(0);
    await client.close();
  });

  it('cancels with the ack, and rejects a refused request with a ClientError naming the code', async () => {
    const client = await ChatClient.connect(url, { createSocket: nodeSockets({ apiKey: KEY }) });
    const { sessionId } = await client.openSession();
    const generation = client.chat(sessionId, sentence(500, 'w'));
    await generation.queued;
    const ack = await generation.cancel();
    expect(ack).toMatchObject({ status: 'cancelled', genId: generation.genId });
    expect((await generation.done).finish).toBe('cancelled');

    const refused = client.chat('s_nope', 'hello');
    await expect(refused.done).rejects.toMatchObject({ code: 'not_found' });
    await expect(refused.text()).rejects.toBeInstanceOf(ClientError);
    await expect(client.openSession({ sessionId: 's_nope', resumeToken: 'x' })).rejects.toMatchObject({
      code: 'not_found',
    });
    await client.close();
  });

  it('answers tool calls with sendToolResults: all of them at once, and again after a follow-up cancelled in the queue', async () => {
    const client = await ChatClient.connect(url, { createSocket: nodeSockets({ apiKey: KEY }) });
    const { sessionId } = await client.openSession();
    const tools = [
      { name: 'get_weather', parameters: { type: 'object' } },
      { name: 'get_time', parameters: { type: 'object' } },
    ];
    const asking = client.chat(sessionId, 'Weather and time in Oslo?', { tools });
    expect((await asking.done).finish).toBe('tool_calls');
    expect(asking.toolCalls.map((call) => call.name)).toEqual(['get_weather', 'get_time']);
    const [weather, time] = asking.toolCalls.map((call) => call.callId) as [string, string];
    // A partial set would leave the next generation waiting for a start that never comes: refused here.
    const partial = client.sendToolResults(sessionId, [{ callId: weather, content: 'Snow' }]);
    await expect(partial.done).rejects.toMatchObject({ code: 'bad_frame', message: expect.stringContaining(time) });

    // Every sequence busy: the follow-up queues, and is cancelled there, before any token.
    const busy = await Promise.all(
      Array.from({ length: engine.info.sequences }, async () => {
        const other = await client.openSession();
        const generation = client.chat(other.sessionId, sentence(400, 'b'));
        await generation.queued;
        return generation;
      }),
    );
    const results = [
      { callId: weather, content: 'Snow' },
      { callId: time, content: 'Noon' },
    ];
    const queued = client.sendToolResults(sessionId, results);
    expect((await queued.queued).position).toBeGreaterThan(0);
    await queued.cancel();
    expect((await queued.done).finish).toBe('cancelled');
    for (const generation of busy) await generation.cancel();

    // The calls still wait; the results sent again run with the turn's tools.
    const answering = client.sendToolResults(sessionId, results);
    expect(await answering.text()).toBe('Noon');
    expect(engine.lastRequest?.params.tools?.map((tool) => tool.name)).toEqual(['get_weather', 'get_time']);
    await client.close();
  });

  it('refuses to connect without a key', async () => {
    await expect(ChatClient.connect(url, { createSocket: nodeSockets() })).rejects.toMatchObject({
      code: 'connection_closed',
    });
  });

  it('reconnects after the connection drops mid answer, reattaches and resumes with nothing lost or repeated', async () => {
    const proxy = await TcpProxy.start(Number(new URL(url).port));
    const states: string[] = [];
    const client = await ReconnectingClient.connect(`ws://127.0.0.1:${proxy.port}/v1/ws`, {
      createSocket: nodeSockets({ apiKey: KEY }),
      initialDelayMs: 20,
      onState: (state) => states.push(state),
    });
    const { sessionId } = await client.openSession();
    const text = sentence(150, 'r');
    const generation = client.chat(sessionId, text);
    const seqs: number[] = [];
    let received = '';
    for await (const chunk of generation) {
      seqs.push(chunk.seq);
      received += chunk.text;
      if (seqs.length === 20) proxy.cut();
    }
    expect(received).toBe(text);
    expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
    expect(new Set(seqs).size).toBe(seqs.length);
    expect((await generation.done).usage.completionTokens).toBe(150);
    expect(states).toEqual(['reconnecting', 'open']);
    await client.close();
    await proxy.close();
  });
});
