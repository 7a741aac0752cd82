import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { ChatClient, type SocketFactory, type WebSocketLike } from '../../client/ChatClient.js';
import type { ClientError } from '../../client/ClientError.js';
import type { ClientGeneration } from '../../client/ClientGeneration.js';
import { nodeSockets } from '../../client/node.js';
import { ReconnectingClient } from '../../client/ReconnectingClient.js';
import {
  decodeServerFrame,
  type GenerationDone,
  PROTOCOL_VERSION,
  type ServerFrame,
  type Token,
} from '../../protocol/index.js';
import { INSTANCE_TTL_MS } from '../../server/store/RedisStore.js';
import { type Haproxy, startHaproxy } from '../../tooling/haproxy.js';
import { type RedisServer, startRedis } from '../../tooling/redisServer.js';
import { type SpawnedServer, spawnServer } from '../../tooling/serverProcess.js';

/**
 * Many instances, end to end: two server processes sharing a private Redis (`--store redis://…`)
 * behind Debian's haproxy (round robin, health checks on /readyz), driven through the project's
 * client. The test that kills an instance runs last: the others need both.
 */

/** Sessions, tickets and the failover use this key; the shared budgets have one of their own. */
const KEY = 'multi-instance-main-key-0123456789';
const LIMITS_KEY = 'multi-instance-limits-key-0123456789';
/** The failover's answer stays reserved (its instance never settles it): a key of its own. */
const FAILOVER_KEY = 'multi-instance-failover-key-0123456789';
/** Per key, on both instances: the budgets test admits 3 answers of LIMITS_MAX_TOKENS in a minute, not 4. */
const TOKENS_PER_MINUTE = 1800;
const MAX_CONCURRENT_PER_KEY = 2;
const LIMITS_MAX_TOKENS = 550;

type Instance = { name: 'a' | 'b'; server: SpawnedServer; port: number; wsUrl: string; httpUrl: string };

/** One socket the client opened: the instance HAProxy sent it to (X-Served-By), and every frame it got. */
type Wire = {
  socket: WebSocket;
  servedBy: Promise<string | undefined>;
  frames: ServerFrame[];
  /** performance.now() of its first token frame. */
  firstTokenAt?: number;
};

/**
 * A TCP hop on 127.0.0.1 in front of a port: it forwards both ways, except that after drop() what
 * comes back on the connections open then is thrown away (a path that loses what is in flight).
 * Those connections close when their other side does.
 */
class LossyLink {
  private readonly dropping = new Set<Socket>();
  private readonly sockets = new Set<Socket>();

  private constructor(
    private readonly server: Server,
    readonly port: number,
  ) {}

  static async start(targetPort: number): Promise<LossyLink> {
    let link: LossyLink | undefined;
    const server = createServer((client) => link?.forward(client, targetPort));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const address = server.address();
    link = new LossyLink(server, typeof address === 'object' && address !== null ? address.port : 0);
    return link;
  }

  /** Loses from now on what comes back on the connections open now. */
  drop(): void {
    for (const socket of this.sockets) this.dropping.add(socket);
  }

  close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  private forward(client: Socket, targetPort: number): void {
    const upstream = createConnection(targetPort, '127.0.0.1');
    this.sockets.add(client);
    client.on('data', (data) => upstream.write(data));
    upstream.on('data', (data) => {
      if (!this.dropping.has(client)) client.write(data);
    });
    const end = () => {
      client.destroy();
      upstream.destroy();
      this.sockets.delete(client);
      this.dropping.delete(client);
    };
    for (const socket of [client, upstream]) {
      socket.on('close', end);
      socket.on('error', end);
    }
  }
}

let redis: RedisServer;
let instances: Instance[] = [];
/** Every server process started, kept from the moment it is spawned so that none outlives the file. */
const spawned: SpawnedServer[] = [];
const killSpawned = () => {
  for (const { child } of spawned) child.kill('SIGKILL');
};
let haproxy: Haproxy;
const clients: Array<{ close(): Promise<unknown> }> = [];
const links: LossyLink[] = [];

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Sockets with the key that note, in `wires`, where each landed and what it received. */
function recordingSockets(apiKey: string, wires: Wire[]): SocketFactory {
  return (url, protocols) => {
    const socket = new WebSocket(url, protocols, { headers: { authorization: `Bearer ${apiKey}` } });
    const frames: ServerFrame[] = [];
    const servedBy = new Promise<string | undefined>((resolve) => {
      socket.once('upgrade', (response) => resolve(response.headers['x-served-by'] as string | undefined));
      socket.once('close', () => resolve(undefined));
    });
    socket.on('message', (data) => {
      const frame = decodeServerFrame(String(data));
      if (frame !== undefined) frames.push(frame);
    });
    const wire: Wire = { socket, servedBy, frames };
    socket.on('message', () => {
      if (wire.firstTokenAt === undefined && frames.at(-1)?.type === 'token') wire.firstTokenAt = performance.now();
    });
    wires.push(wire);
    return socket as unknown as WebSocketLike;
  };
}

async function connect(url: string, apiKey = KEY, wires: Wire[] = []): Promise<ChatClient> {
  const client = await ChatClient.connect(url, { createSocket: recordingSockets(apiKey, wires) });
  clients.push(client);
  return client;
}

/** The HTTP status of a WebSocket upgrade offering `protocols` (101 when it succeeds). */
function upgradeStatus(url: string, protocols: string[]): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url, protocols);
    socket.once('unexpected-response', (_request, response) => {
      resolve(response.statusCode ?? 0);
      socket.terminate();
    });
    socket.once('open', () => {
      resolve(101);
      socket.close();
    });
    socket.once('error', (error) => reject(error));
  });
}

function instance(name: string | undefined): Instance {
  const found = instances.find((entry) => entry.name === name);
  if (found === undefined) throw new Error(`No instance named ${name}`);
  return found;
}

beforeAll(async () => {
  const started = performance.now();
  redis = await startRedis();
  const env = {
    STORE: redis.url,
    API_KEYS: `${KEY},${LIMITS_KEY},${FAILOVER_KEY}`,
    TOKENS_PER_MINUTE: String(TOKENS_PER_MINUTE),
    MAX_CONCURRENT_PER_KEY: String(MAX_CONCURRENT_PER_KEY),
    SHUTDOWN_GRACE_MS: '500',
  };
  process.once('exit', killSpawned);
  instances = await Promise.all(
    (['a', 'b'] as const).map(async (name) => {
      const server = spawnServer([], env);
      spawned.push(server);
      const port = await server.port();
      await server.ready();
      return { name, server, port, wsUrl: `ws://127.0.0.1:${port}/v1/ws`, httpUrl: `http://127.0.0.1:${port}` };
    }),
  );
  haproxy = await startHaproxy({
    backends: instances.map(({ name, port }) => ({ name, host: '127.0.0.1', port })),
  });
  // Both pass a health check before the tests count on round robin.
  await Promise.all(instances.map(({ name }) => haproxy.waitFor(name, 'UP')));
  console.info(`multi-instance: Redis, two instances and HAProxy up in ${Math.round(performance.now() - started)} ms`);
}, 60_000);

afterAll(async () => {
  await Promise.allSettled(clients.map((client) => client.close()));
  await Promise.allSettled(links.map((link) => link.close()));
  await Promise.allSettled(
    spawned.map(async (server) => {
      if (server.child.exitCode !== null || server.child.signalCode !== null) return;
      server.child.kill('SIGTERM');
      const timer = setTimeout(() => server.child.kill('SIGKILL'), 5000);
      await server.exited;
      clearTimeout(timer);
    }),
  );
  process.removeListener('exit', killSpawned);
  await haproxy?.stop();
  await redis?.stop();
}, 20_000);

describe('many instances behind HAProxy, sharing Redis', () => {
  it('continues a session opened on one instance through the other, with its whole history', async () => {
    const wires: Wire[] = [];
    const first = await connect(haproxy.wsUrl, KEY, wires);
    const second = await connect(haproxy.wsUrl, KEY, wires);
    // Round robin: two connections in a row go to different instances.
    const landed = await Promise.all(wires.map((wire) => wire.servedBy));
    expect(new Set(landed)).toEqual(new Set(['a', 'b']));

    const system = 'You tell short stories.';
    const opened = await first.openSession({ system });
    const one = first.chat(opened.sessionId, 'Tell me about a cat.', { maxTokens: 30, temperature: 0 });
    const oneText = await one.text();
    const oneDone = await one.done;
    expect(oneText.length).toBeGreaterThan(0);

    const { sessionId, resumeToken } = opened;
    const reattached = await second.openSession({ sessionId, resumeToken });
    const answer = (text: string, done: GenerationDone) =>
      done.finish === 'stop'
        ? { role: 'assistant', content: text }
        : { role: 'assistant', content: text, finish: done.finish };
    expect(reattached.resumed).toBe(true);
    expect(reattached.history).toEqual([
      { role: 'system', content: system },
      { role: 'user', content: 'Tell me about a cat.' },
      answer(oneText, oneDone),
    ]);
    const two = second.chat(sessionId, 'And then?', { maxTokens: 20, temperature: 0 });
    const twoText = await two.text();
    const twoDone = await two.done;
    // The other instance's prompt holds the first turn: it is longer than the first prompt and answer.
    expect(twoDone.usage.promptTokens).toBeGreaterThan(oneDone.usage.promptTokens + oneDone.usage.completionTokens);

    // Back on the first instance, from a new connection: both turns are there.
    await first.close();
    const again = await connect(instance(landed[0]).wsUrl);
    const back = await again.openSession({ sessionId, resumeToken });
    expect(back.history).toEqual([
      { role: 'system', content: system },
      { role: 'user', content: 'Tell me about a cat.' },
      answer(oneText, oneDone),
      { role: 'user', content: 'And then?' },
      answer(twoText, twoDone),
    ]);
    const three = again.chat(sessionId, 'The end.', { maxTokens: 5, temperature: 0 });
    const threeDone = await three.done;
    expect(threeDone.usage.promptTokens).toBeGreaterThan(twoDone.usage.promptTokens + twoDone.usage.completionTokens);
  }, 20_000);

  it("holds a key's generations at once and tokens per minute across both instances", async () => {
    // Four connections, two on each instance, each with two sessions: 8 answers asked for in a burst.
    const wires: Wire[] = [];
    const connections = await Promise.all([0, 1, 2, 3].map(() => connect(haproxy.wsUrl, LIMITS_KEY, wires)));
    const landed = await Promise.all(wires.map((wire) => wire.servedBy));
    const on = (name: string) => connections.filter((_, index) => landed[index] === name);
    expect(on('a')).toHaveLength(2);
    expect(on('b')).toHaveLength(2);
    const sessionsOf = (clients: ChatClient[]) =>
      Promise.all(
        clients.flatMap((client) =>
          [client.openSession(), client.openSession()].map(async (opened) => ({ client, ...(await opened) })),
        ),
      );
    const [onA, onB] = await Promise.all([sessionsOf(on('a')), sessionsOf(on('b'))]);
    // All at once, on both instances: they race for the key's budgets in Redis.
    const sessions = [...onA, ...onB];

    const params = { maxTokens: LIMITS_MAX_TOKENS, temperature: 0 };
    const prompt = 'Once upon a time';
    const admittedPerWave: number[] = [];
    const refusals: string[] = [];
    const answers: GenerationDone[] = [];
    const started = performance.now();
    // Waves of 8, each after the last wave's answers ended, until only tokens refuse.
    for (let wave = 0; wave < 6; wave += 1) {
      const generations: ClientGeneration[] = sessions.map(({ client, sessionId }) =>
        client.chat(sessionId, prompt, params),
      );
      const outcomes = await Promise.all(
        generations.map((generation) =>
          generation.queued.then(
            () => ({ admitted: generation }),
            (error: ClientError) => ({ refused: error }),
          ),
        ),
      );
      const admitted = outcomes.flatMap((outcome) => ('admitted' in outcome ? [outcome.admitted] : []));
      const refused = outcomes.flatMap((outcome) => ('refused' in outcome ? [outcome.refused] : []));
      for (const error of refused) {
        expect(error.code).toBe('rate_limited');
        const dimension = /tokens per minute/.test(error.message)
          ? 'tokens'
          : /at once/.test(error.message)
            ? 'concurrent'
            : error.message;
        refusals.push(dimension);
      }
      admittedPerWave.push(admitted.length);
      answers.push(...(await Promise.all(admitted.map((generation) => generation.done))));
      if (admitted.length === 0 && refused.every((error) => /tokens per minute/.test(error.message))) break;
      // The slots are given back just after generation.done.
      await sleep(100);
    }
    const elapsedMs = performance.now() - started;
    const count = (dimension: string) => refusals.filter((reason) => reason === dimension).length;
    console.info(
      `multi-instance budgets: admitted per wave ${admittedPerWave.join(', ')}; refused ${count('concurrent')} ` +
        `for generations at once, ${count('tokens')} for tokens, in ${Math.round(elapsedMs)} ms`,
    );
    expect(refusals.filter((reason) => reason !== 'tokens' && reason !== 'concurrent')).toEqual([]);
    // Generations at once: never more than the key's 2 over both instances (each alone would admit 2).
    expect(Math.max(...admittedPerWave)).toBe(MAX_CONCURRENT_PER_KEY);
    // Tokens: each answer reserves its prompt estimate (characters / 3) + maxTokens and runs to
    // maxTokens, so 3 fit in the minute's 1,800 over both instances (each alone would admit 3: 6 in
    // all); refilling another answer's worth would take 18 s.
    for (const done of answers) expect(done.finish).toBe('length');
    const reserved = Math.ceil(prompt.length / 3) + LIMITS_MAX_TOKENS;
    expect(answers).toHaveLength(Math.floor(TOKENS_PER_MINUTE / reserved));
    const used = answers.reduce((sum, done) => sum + done.usage.promptTokens + done.usage.completionTokens, 0);
    expect(used).toBeLessThanOrEqual(TOKENS_PER_MINUTE + (TOKENS_PER_MINUTE * elapsedMs) / 60_000);
  }, 30_000);

  // Two chat.send on one instance admitted in the same tick (their store round trips return
  // together): each generation's listeners go on as it is queued, so neither misses a frame.
  it('answers every chat.send of a burst on one instance', async () => {
    const [a] = instances as [Instance, Instance];
    for (let burst = 0; burst < 12; burst += 1) {
      const connections = await Promise.all([0, 1, 2, 3].map(() => connect(a.wsUrl)));
      const sessions = await Promise.all(
        connections.flatMap((client) =>
          [client.openSession(), client.openSession()].map(async (opened) => ({ client, ...(await opened) })),
        ),
      );
      // Two are admitted (MAX_CONCURRENT_PER_KEY), the others refused: each settles one way or the other.
      const generations = sessions.map(({ client, sessionId }) => client.chat(sessionId, 'The sun', { maxTokens: 5 }));
      const settled = Promise.allSettled(generations.map((generation) => generation.done));
      const answered = await Promise.race([settled.then(() => true), sleep(2000).then(() => false)]);
      await Promise.all(connections.map((client) => client.close()));
      expect(answered, `burst ${burst}: a chat.send got no generation.queued and no error`).toBe(true);
      await sleep(100);
    }
  }, 40_000);

  it('accepts a ticket issued by one instance once, on the other; a second use is refused on either', async () => {
    const [a, b] = instances as [Instance, Instance];
    const response = await fetch(`${a.httpUrl}/v1/tickets`, {
      method: 'POST',
      headers: { authorization: `Bearer ${KEY}` },
    });
    expect(response.status).toBe(200);
    const { ticket, subprotocol } = (await response.json()) as { ticket: string; subprotocol: string };
    expect(subprotocol).toBe(`ticket.${ticket}`);

    const browser = await ChatClient.connect(b.wsUrl, { ticket, createSocket: nodeSockets() });
    clients.push(browser);
    expect(browser.welcome.protocol).toBe(PROTOCOL_VERSION);
    expect((await browser.openSession()).sessionId).toMatch(/^s_/);
    await browser.close();

    expect(await upgradeStatus(b.wsUrl, [PROTOCOL_VERSION, subprotocol])).toBe(401);
    expect(await upgradeStatus(a.wsUrl, [PROTOCOL_VERSION, subprotocol])).toBe(401);
  }, 15_000);

  // A turn begins by claiming the session in the store and reading its history from there, so a
  // copy held open here never hides the turns another instance added.
  it('shows a turn added on the other instance to a session still open here', async () => {
    const [a, b] = instances as [Instance, Instance];
    const onA = await connect(a.wsUrl);
    const onB = await connect(b.wsUrl);
    const { sessionId, resumeToken } = await onA.openSession();
    const params = { maxTokens: 10, temperature: 0 };
    await onA.chat(sessionId, 'Tell me about a dog.', params).done;
    await onB.openSession({ sessionId, resumeToken });
    const two = await onB.chat(sessionId, 'And then?', params).done;
    const three = await onA.chat(sessionId, 'What next?', params).done;
    expect(three.usage.promptTokens).toBeGreaterThan(two.usage.promptTokens + two.usage.completionTokens);
  }, 15_000);

  // Last: it kills an instance.
  it('resumes an answer whose instance was killed, through the balancer on the other, ending it as interrupted', async () => {
    // The client reaches HAProxy through a link that can lose what is in flight on it.
    const link = await LossyLink.start(haproxy.port);
    links.push(link);
    const wires: Wire[] = [];
    const client = await ReconnectingClient.connect(`ws://127.0.0.1:${link.port}/v1/ws`, {
      createSocket: recordingSockets(FAILOVER_KEY, wires),
    });
    clients.push(client);
    const victim = instance(await wires[0]?.servedBy);
    const survivor = instances.find((entry) => entry !== victim) as Instance;

    const prompt = 'Once upon a time';
    const { sessionId, resumeToken } = await client.openSession();
    const generation = client.chat(sessionId, prompt, { maxTokens: 600, temperature: 0 });
    let killedAt = 0;
    let markedDown: Promise<number> | undefined;
    let text = '';
    for await (const chunk of generation) {
      text += chunk.text;
      if (killedAt === 0 && chunk.seq >= 20) {
        // From here what the instance streams is lost on the way (it reaches the store, not this
        // client), as on a connection that is dying; then the instance is killed. The rest of the
        // answer must come from the store, after the last seq the client holds.
        link.drop();
        await sleep(150);
        victim.server.child.kill('SIGKILL');
        killedAt = performance.now();
        markedDown = haproxy.waitFor(victim.name, 'DOWN', 8000);
        markedDown.catch(() => undefined);
        await victim.server.exited;
      }
    }
    const done = await generation.done;
    const failoverMs = performance.now() - killedAt;
    const downMs = await markedDown;
    expect((await victim.server.exited).signal).toBe('SIGKILL');
    expect(done.finish).toBe('interrupted');

    // It reconnected through the balancer to the survivor, which sent what came after the last seq
    // the client held, from the store. Every token came once: strictly increasing seqs over the
    // sockets, and the text is what the store kept (below) and what the model says (further below).
    expect(wires.length).toBeGreaterThanOrEqual(2);
    const [before, ...after] = wires as [Wire, ...Wire[]];
    expect(await after.at(-1)?.servedBy).toBe(survivor.name);
    const tokensOf = (wire: Wire) =>
      wire.frames.filter((frame): frame is Token => frame.type === 'token' && frame.genId === generation.genId);
    const tokens = wires.flatMap(tokensOf);
    const seqs = tokens.map((token) => token.seq);
    expect(seqs).toEqual([...seqs].sort((x, y) => x - y));
    expect(new Set(seqs).size).toBe(seqs.length);
    expect(tokens.map((token) => token.text).join('')).toBe(text);
    // The killed instance had streamed more than the client read: the rest came from the store.
    const heldAtCut = tokensOf(before).at(-1)?.seq ?? 0;
    const replayed = after.flatMap(tokensOf);
    expect(replayed.length).toBeGreaterThan(0);
    expect(replayed[0]?.seq).toBeGreaterThan(heldAtCut);
    expect(done.usage.completionTokens).toBe(generation.lastSeq);
    const replayedAt = after.find((wire) => wire.firstTokenAt !== undefined)?.firstTokenAt ?? Number.NaN;
    console.info(
      `multi-instance failover: the client held seq ${heldAtCut}, the killed instance had streamed ` +
        `${generation.lastSeq}; after the kill: the rest replayed at ${Math.round(replayedAt - killedAt)} ms, ` +
        `generation.done interrupted at ${Math.round(failoverMs)} ms, HAProxy saw the instance DOWN at ` +
        `${Math.round(downMs ?? Number.NaN)} ms`,
    );
    // Within the liveness TTL (and a heartbeat and some polls) of the kill.
    expect(failoverMs).toBeLessThan(INSTANCE_TTL_MS + 3000);

    // The history holds the partial answer, as interrupted.
    const reader = await connect(survivor.wsUrl, FAILOVER_KEY);
    const reopened = await reader.openSession({ sessionId, resumeToken });
    expect(reopened.history).toEqual([
      { role: 'user', content: prompt },
      { role: 'assistant', content: text, finish: 'interrupted' },
    ]);
    // Nothing is missing in the middle: the same prompt at temperature 0 gives the same text.
    const fresh = await reader.openSession();
    const reference = reader.chat(fresh.sessionId, prompt, { maxTokens: generation.lastSeq, temperature: 0 });
    expect(await reference.text()).toBe(text);

    // And the session goes on, through the balancer, on the survivor.
    const next = client.chat(sessionId, 'And then?', { maxTokens: 10, temperature: 0 });
    const nextDone = await next.done;
    expect(['stop', 'length']).toContain(nextDone.finish);
    expect(nextDone.usage.promptTokens).toBeGreaterThan(generation.lastSeq);
  }, 30_000);
});
