import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryBudgets } from '../../server/store/MemoryBudgets.js';
import { RedisStore } from '../../server/store/RedisStore.js';
import {
  type BucketName,
  type BudgetLimits,
  type NewSession,
  type StoredChunk,
  type StoredOutcome,
  StoreUnavailable,
} from '../../server/store/Store.js';
import { type RedisServer, startRedis } from '../../tooling/redisServer.js';

/** Short liveness so that a dead instance is seen as dead within a test. */
const INSTANCE_TTL_MS = 600;
const BOUNDS = { maxSessionsPerKey: 100, maxCharsPerKey: 1_000_000 };
const OUTCOME: StoredOutcome = {
  finish: 'stop',
  usage: { promptTokens: 5, completionTokens: 3, cachedPromptTokens: 0 },
  timings: { queuedMs: 1, ttftMs: 2, totalMs: 3 },
};

let server: RedisServer;
let a: RedisStore;
let b: RedisStore;
let raw: Redis;
let counter = 0;

const id = (prefix: string) => `${prefix}_${++counter}_${Math.random().toString(36).slice(2, 8)}`;
const connect = (instanceId: string) => RedisStore.connect(server.url, { instanceId, instanceTtlMs: INSTANCE_TTL_MS });
const newSession = (overrides: Partial<NewSession> = {}): NewSession => ({
  id: id('s'),
  ownerKey: id('owner'),
  resumeTokenHash: 'ab'.repeat(32),
  system: undefined,
  ttlMs: 60_000,
  ...overrides,
});
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const chunks = (...texts: [string, StoredChunk['channel']][]): StoredChunk[] =>
  texts.map(([text, channel], index) => ({ seq: index + 1, text, channel }));

beforeAll(async () => {
  server = await startRedis();
  [a, b] = await Promise.all([connect('instance-a'), connect('instance-b')]);
  raw = new Redis(server.url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  raw.on('error', () => {});
  await raw.connect();
});

afterAll(async () => {
  await Promise.all([a?.close(), b?.close()]);
  raw?.disconnect();
  await server?.stop();
});

describe('RedisStore sessions', () => {
  it('creates, loads (from another instance) and deletes a session, counting it for its owner', async () => {
    const session = newSession({ system: 'Be brief. ü' });
    expect(await a.createSession(session, BOUNDS)).toBeUndefined();
    expect(await b.loadSession(session.id)).toEqual({
      id: session.id,
      ownerKey: session.ownerKey,
      resumeTokenHash: session.resumeTokenHash,
      messages: [{ role: 'system', content: 'Be brief. ü' }],
      chars: 11,
      activeGenId: undefined,
    });
    expect(await b.ownerUsage(session.ownerKey)).toEqual({ sessions: 1, chars: 11 });
    const plain = newSession({ ownerKey: session.ownerKey, system: '' });
    expect(await b.createSession(plain, BOUNDS)).toBeUndefined();
    expect(await a.loadSession(plain.id)).toMatchObject({ messages: [], chars: 0 });
    expect(await a.ownerUsage(session.ownerKey)).toEqual({ sessions: 2, chars: 11 });

    await b.deleteSession(session.id);
    expect(await a.loadSession(session.id)).toBeUndefined();
    expect(await a.ownerUsage(session.ownerKey)).toEqual({ sessions: 1, chars: 0 });
    await b.deleteSession(session.id);
    expect(await a.loadSession('s_unknown')).toBeUndefined();
    expect(await a.ownerUsage('nobody')).toEqual({ sessions: 0, chars: 0 });
  });

  it("refuses past the owner's sessions and characters with its usage", async () => {
    const ownerKey = id('owner');
    const bounds = { maxSessionsPerKey: 2, maxCharsPerKey: 10 };
    expect(await a.createSession(newSession({ ownerKey, system: '123456' }), bounds)).toBeUndefined();
    expect(await a.createSession(newSession({ ownerKey, system: '12345' }), bounds)).toEqual({
      limit: 'chars',
      usage: { sessions: 1, chars: 6 },
    });
    expect(await b.createSession(newSession({ ownerKey, system: '1234' }), bounds)).toBeUndefined();
    expect(await b.createSession(newSession({ ownerKey }), bounds)).toEqual({
      limit: 'sessions',
      usage: { sessions: 2, chars: 10 },
    });
  });

  it('creates exactly maxSessionsPerKey sessions when 20 are asked for at once on two instances', async () => {
    const ownerKey = id('owner');
    const bounds = { maxSessionsPerKey: 5, maxCharsPerKey: 1_000_000 };
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, index) => (index % 2 ? a : b).createSession(newSession({ ownerKey }), bounds)),
    );
    expect(results.filter((result) => result === undefined)).toHaveLength(5);
    expect(results.filter((result) => result?.limit === 'sessions')).toHaveLength(15);
    expect(await a.ownerUsage(ownerKey)).toEqual({ sessions: 5, chars: 0 });
  });

  it('forgets a session unused for its ttlMs (giving its budget back); loading it or a turn extends it', async () => {
    const ownerKey = id('owner');
    const kept = newSession({ ownerKey, ttlMs: 600, system: 'abc' });
    const dropped = newSession({ ownerKey, ttlMs: 600, system: 'de' });
    const answered = newSession({ ownerKey, ttlMs: 600 });
    for (const session of [kept, dropped, answered]) await a.createSession(session, BOUNDS);
    expect(await b.ownerUsage(ownerKey)).toEqual({ sessions: 3, chars: 5 });
    await sleep(300);
    expect(await b.loadSession(kept.id)).toBeDefined();
    const user = { role: 'user', content: 'q' } as const;
    const genId = id('g');
    await b.beginTurn({ sessionId: answered.id, genId, ownerKey, user, transcriptTtlMs: 1000 });
    await sleep(400);
    expect(await b.loadSession(dropped.id)).toBeUndefined();
    expect(await b.ownerUsage(ownerKey)).toEqual({ sessions: 2, chars: 3 });
    await b.endTurn({ sessionId: answered.id, genId, outcome: OUTCOME, turn: { user, answer: 'a' } });
    expect(await a.loadSession(kept.id)).toMatchObject({ chars: 3 });
    await sleep(300);
    expect(await b.ownerUsage(ownerKey)).toEqual({ sessions: 2, chars: 5 });
    await sleep(450);
    expect(await a.loadSession(kept.id)).toBeUndefined();
    expect(await a.loadSession(answered.id)).toBeUndefined();
    expect(await a.ownerUsage(ownerKey)).toEqual({ sessions: 0, chars: 0 });
    expect(await raw.keys(`llmchat:o:${ownerKey}:*`)).toEqual([]);
    expect(await raw.keys(`llmchat:s:${answered.id}*`)).toEqual([]);
  });
});

describe('RedisStore turns and transcripts', () => {
  it('begins a turn once (busy, not_found), streams chunks in order and ends it in one step', async () => {
    const session = newSession({ system: 'sys' });
    await a.createSession(session, BOUNDS);
    const user = { role: 'user', content: 'Hello' } as const;
    const turn = { sessionId: session.id, ownerKey: session.ownerKey, user, transcriptTtlMs: 5000 };
    expect(await a.beginTurn({ ...turn, sessionId: 's_missing', genId: id('g') })).toEqual({
      ok: false,
      reason: 'not_found',
    });
    const genId = id('g');
    expect(await a.beginTurn({ ...turn, genId })).toEqual({ ok: true });
    const [first, second] = await Promise.all([
      b.beginTurn({ ...turn, genId: id('g') }),
      a.beginTurn({ ...turn, genId: id('g') }),
    ]);
    expect(first).toEqual({ ok: false, reason: 'busy', activeGenId: genId });
    expect(second).toEqual({ ok: false, reason: 'busy', activeGenId: genId });
    expect(await b.loadSession(session.id)).toMatchObject({ activeGenId: genId });

    const streamed = chunks(['think', 'reasoning'], ['Hi', 'content'], [' there', 'content'], ['!', 'content']);
    // The writes are on the socket when appendChunks returns (before the frames would go to clients).
    const socket = (a as unknown as { redis: Redis }).redis.stream;
    const written = socket.bytesWritten;
    a.appendChunks(genId, streamed.slice(0, 1));
    a.appendChunks(genId, streamed.slice(1));
    expect(socket.bytesWritten).toBeGreaterThan(written + 4 * 40);
    expect(await b.loadGeneration(genId)).toEqual({
      id: genId,
      sessionId: session.id,
      ownerKey: session.ownerKey,
      chunks: streamed,
      outcome: undefined,
    });

    await a.endTurn({ sessionId: session.id, genId, outcome: OUTCOME, turn: { user, answer: 'Hi there!' } });
    expect(await b.loadGeneration(genId)).toMatchObject({ chunks: streamed, outcome: OUTCOME });
    expect(await b.loadSession(session.id)).toMatchObject({
      messages: [
        { role: 'system', content: 'sys' },
        { role: 'user', content: 'Hello' },
        { role: 'assistant', content: 'Hi there!' },
      ],
      chars: 17,
      activeGenId: undefined,
    });
    expect(await b.ownerUsage(session.ownerKey)).toEqual({ sessions: 1, chars: 17 });
    // The transcript is kept for the resume window only.
    const ttl = await raw.pttl(`llmchat:g:${genId}:x`);
    expect(ttl).toBeGreaterThan(3000);
    expect(ttl).toBeLessThanOrEqual(5000);
    expect(await raw.pttl(`llmchat:g:${genId}`)).toBeLessThanOrEqual(5000);

    // A second turn: cut short by a length limit (kept with its finish), then one with no answer.
    const next = id('g');
    expect(await b.beginTurn({ ...turn, genId: next })).toEqual({ ok: true });
    b.appendChunks(next, chunks(['Once', 'content']));
    const length = { ...OUTCOME, finish: 'length' } as const;
    await b.endTurn({ sessionId: session.id, genId: next, outcome: length, turn: { user, answer: 'Once' } });
    const empty = id('g');
    expect(await a.beginTurn({ ...turn, genId: empty })).toEqual({ ok: true });
    const cancelled = { ...OUTCOME, finish: 'cancelled' } as const;
    await a.endTurn({ sessionId: session.id, genId: empty, outcome: cancelled, turn: { user, answer: '' } });
    const loaded = await a.loadSession(session.id);
    expect(loaded?.messages.slice(3)).toEqual([
      { role: 'user', content: 'Hello' },
      { role: 'assistant', content: 'Once', finish: 'length' },
    ]);
    expect(loaded).toMatchObject({ chars: 26, activeGenId: undefined });
    expect(await a.loadGeneration(empty)).toMatchObject({ chunks: [], outcome: cancelled });
    expect(await a.loadGeneration('g_unknown')).toBeUndefined();
  });

  it('records only the outcome of a turn whose session was deleted meanwhile', async () => {
    const session = newSession();
    await a.createSession(session, BOUNDS);
    const genId = id('g');
    const user = { role: 'user', content: 'Hi' } as const;
    await a.beginTurn({ sessionId: session.id, genId, ownerKey: session.ownerKey, user, transcriptTtlMs: 5000 });
    await b.deleteSession(session.id);
    a.appendChunks(genId, chunks(['Yes', 'content']));
    await a.endTurn({ sessionId: session.id, genId, outcome: OUTCOME, turn: { user, answer: 'Yes' } });
    expect(await b.loadGeneration(genId)).toMatchObject({ chunks: [{ text: 'Yes' }], outcome: OUTCOME });
    expect(await b.loadSession(session.id)).toBeUndefined();
    expect(await b.ownerUsage(session.ownerKey)).toEqual({ sessions: 0, chars: 0 });
    expect(await raw.exists(`llmchat:s:${session.id}`, `llmchat:s:${session.id}:m`)).toBe(0);
  });

  it('settles the generation of a dead instance once (as interrupted, keeping its partial answer), not a live one', async () => {
    const dying = await connect('instance-dying');
    const session = newSession({ system: 'S' });
    await dying.createSession(session, BOUNDS);
    const genId = id('g');
    const user = { role: 'user', content: 'Tell me' } as const;
    await dying.beginTurn({ sessionId: session.id, genId, ownerKey: session.ownerKey, user, transcriptTtlMs: 5000 });
    const streamed = chunks(['hmm', 'reasoning'], ['Once upon', 'content'], [' a time', 'content']);
    dying.appendChunks(genId, streamed);

    // Its instance is alive: nothing to settle.
    expect(await a.settleOrphan(genId)).toEqual({
      id: genId,
      sessionId: session.id,
      ownerKey: session.ownerKey,
      chunks: streamed,
      outcome: undefined,
    });
    expect(
      await a.beginTurn({
        sessionId: session.id,
        genId: id('g'),
        ownerKey: session.ownerKey,
        user,
        transcriptTtlMs: 1,
      }),
    ).toEqual({ ok: false, reason: 'busy', activeGenId: genId });

    await dying.close();
    await sleep(INSTANCE_TTL_MS + 200);
    const interrupted = {
      finish: 'interrupted',
      usage: { promptTokens: 0, completionTokens: 3, cachedPromptTokens: 0 },
      timings: { queuedMs: 0, ttftMs: null, totalMs: 0 },
    };
    const settled = await Promise.all([a.settleOrphan(genId), b.settleOrphan(genId), a.settleOrphan(genId)]);
    for (const generation of settled) expect(generation).toMatchObject({ chunks: streamed, outcome: interrupted });
    const loaded = await b.loadSession(session.id);
    expect(loaded).toMatchObject({
      messages: [
        { role: 'system', content: 'S' },
        { role: 'user', content: 'Tell me' },
        { role: 'assistant', content: 'Once upon a time', finish: 'interrupted' },
      ],
      chars: 1 + 7 + 16,
      activeGenId: undefined,
    });
    expect(await a.ownerUsage(session.ownerKey)).toEqual({ sessions: 1, chars: 24 });
    // A late end from the instance that ran it changes nothing: the first end wins.
    await a.endTurn({ sessionId: session.id, genId, outcome: OUTCOME, turn: { user, answer: 'Once upon a time!' } });
    expect((await b.loadSession(session.id))?.messages).toHaveLength(3);
    expect(await b.loadGeneration(genId)).toMatchObject({ outcome: interrupted });
    expect(await a.settleOrphan('g_unknown')).toBeUndefined();
  });
});

describe('RedisStore tickets', () => {
  it('redeems a ticket once across instances, and not after it expired', async () => {
    await a.issueTicket('hash-1', 'key-1', 10_000);
    const redeemed = await Promise.all([a, b, a, b].map((store) => store.redeemTicket('hash-1')));
    expect(redeemed.filter((name) => name === 'key-1')).toHaveLength(1);
    expect(redeemed.filter((name) => name === undefined)).toHaveLength(3);
    await b.issueTicket('hash-2', 'key-2', 50);
    await sleep(120);
    expect(await a.redeemTicket('hash-2')).toBeUndefined();
  });
});

describe('RedisStore responses', () => {
  it('keeps a stored response (the Responses API) for every instance until it expires', async () => {
    const responseId = id('resp');
    await a.saveResponse({ id: responseId, ownerKey: 'k', body: '{"output":[]}' }, 10_000);
    expect(await b.loadResponse(responseId)).toEqual({ id: responseId, ownerKey: 'k', body: '{"output":[]}' });
    await b.saveResponse({ id: `${responseId}-short`, ownerKey: 'k', body: '{}' }, 50);
    await sleep(120);
    expect(await a.loadResponse(`${responseId}-short`)).toBeUndefined();
  });
});

describe('RedisStore budgets', () => {
  const limits: BudgetLimits = { requests: 600, tokens: 100, resumes: 2, concurrent: 3 };

  it('never gives out more tokens than the budget across instances taking at once', async () => {
    const key = id('budget');
    const now = 1_000_000;
    const results = await Promise.all(
      Array.from({ length: 30 }, (_, index) =>
        (index % 2 ? a : b).budgets.take(key, { limits, take: { tokens: 10 }, concurrent: false }, now),
      ),
    );
    expect(results.filter((result) => result === undefined)).toHaveLength(10);
    for (const denial of results.filter((result) => result !== undefined)) {
      expect(denial).toEqual({ dimension: 'tokens', retryAfterMs: 6000 });
    }
    expect(await a.budgets.peek(key, limits, now)).toEqual({
      requests: { remaining: 600, resetMs: 0 },
      tokens: { remaining: 0, resetMs: 60_000 },
      resumes: { remaining: 2, resetMs: 0 },
      concurrent: 0,
    });
    // It refills continuously: 10 tokens take 6 s.
    expect(await b.budgets.take(key, { limits, take: { tokens: 10 }, concurrent: false }, now + 5900)).toEqual({
      dimension: 'tokens',
      retryAfterMs: 100,
    });
    expect(await b.budgets.take(key, { limits, take: { tokens: 10 }, concurrent: false }, now + 6000)).toBeUndefined();
  });

  it('counts generations at once across instances, and frees the slots of a dead instance', async () => {
    const key = id('budget');
    const request = { limits, take: { requests: 1 }, concurrent: true };
    const dying = await connect('instance-dying-2');
    expect(await dying.budgets.take(key, request)).toBeUndefined();
    const results = await Promise.all([a, b, a, b].map((store) => store.budgets.take(key, request)));
    expect(results.filter((result) => result === undefined)).toHaveLength(2);
    expect(results.filter((result) => result !== undefined)).toEqual([
      { dimension: 'concurrent', retryAfterMs: 1000 },
      { dimension: 'concurrent', retryAfterMs: 1000 },
    ]);
    expect((await a.budgets.peek(key, limits)).concurrent).toBe(3);
    const holder = results[0] === undefined ? a : b;
    await holder.budgets.settle(key, { concurrent: true, tokens: 0 });
    expect((await b.budgets.peek(key, limits)).concurrent).toBe(2);
    expect(await b.budgets.take(key, request)).toBeUndefined();
    expect(await a.budgets.take(key, request)).toMatchObject({ dimension: 'concurrent' });
    await dying.close();
    await sleep(INSTANCE_TTL_MS + 200);
    expect((await b.budgets.peek(key, limits)).concurrent).toBe(2);
    expect(await a.budgets.take(key, request)).toBeUndefined();
  });

  it('behaves as MemoryBudgets does, operation by operation', async () => {
    const memory = new MemoryBudgets();
    const key = id('budget');
    const small: BudgetLimits = { requests: 5, tokens: 300, resumes: 2, concurrent: 2 };
    let seed = 42;
    const random = () => {
      seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    let now = 5_000_000;
    const names: BucketName[] = ['requests', 'tokens', 'resumes'];
    for (let step = 0; step < 300; step += 1) {
      now += Math.floor(random() * 3000);
      const store = random() < 0.5 ? a : b;
      const choice = random();
      if (choice < 0.5) {
        const take: Partial<Record<BucketName, number>> = {};
        for (const name of names) if (random() < 0.5) take[name] = Math.floor(random() * (name === 'tokens' ? 400 : 3));
        const request = { limits: small, take, concurrent: random() < 0.5 };
        const expected = await memory.take(key, request, now);
        // The concurrent count is per instance in Redis: settle on the instance that took.
        expect(await a.budgets.take(key, request, now), `step ${step}`).toEqual(expected);
      } else if (choice < 0.8) {
        const settlement = { concurrent: random() < 0.5, tokens: Math.floor(random() * 400) - 200 };
        await memory.settle(key, settlement, now);
        await a.budgets.settle(key, settlement, now);
      } else {
        expect(await store.budgets.peek(key, small, now), `step ${step}`).toEqual(await memory.peek(key, small, now));
      }
    }
  });
});

describe('RedisStore connection', () => {
  it('rejects at once, naming the URL without its password, when Redis cannot be reached', async () => {
    const dead = await startRedis();
    const url = `redis://:secret@127.0.0.1:${dead.port}/0`;
    await dead.stop();
    const started = Date.now();
    const error = await RedisStore.connect(url, { instanceId: 'x' }).then(
      () => undefined,
      (reason: unknown) => reason as Error,
    );
    expect(Date.now() - started).toBeLessThan(3000);
    expect(error?.message).toContain(`redis://127.0.0.1:${dead.port}/0`);
    expect(error?.message).toContain('ECONNREFUSED');
    expect(error?.message).not.toContain('secret');
  });

  it('fails a command Redis does not answer after commandTimeoutMs, and recovers when it answers again', async () => {
    const impatient = await RedisStore.connect(server.url, { instanceId: 'impatient', commandTimeoutMs: 300 });
    try {
      server.freeze();
      const started = Date.now();
      await expect(impatient.ownerUsage('x')).rejects.toBeInstanceOf(StoreUnavailable);
      expect(Date.now() - started).toBeLessThan(1000);
      expect(impatient.unavailableReason()).toMatch(/timed out/);
    } finally {
      server.thaw();
    }
    expect(await impatient.ownerUsage('x')).toEqual({ sessions: 0, chars: 0 });
    expect(impatient.unavailableReason()).toBeUndefined();
    await impatient.close();
  });

  it('fails fast while Redis is lost and works again once it is back, without a new store', async () => {
    const session = newSession();
    expect(await a.createSession(session, BOUNDS)).toBeUndefined();
    const genId = id('g');
    const user = { role: 'user', content: 'x' } as const;
    await a.beginTurn({ sessionId: session.id, genId, ownerKey: session.ownerKey, user, transcriptTtlMs: 5000 });

    await server.pause();
    const deadline = Date.now() + 2000;
    while (a.unavailableReason() === undefined && Date.now() < deadline) await sleep(10);
    expect(a.unavailableReason()).toMatch(new RegExp(`^redis at redis://127\\.0\\.0\\.1:${server.port}/0 unreachable`));

    const started = Date.now();
    const calls = [
      a.loadSession(session.id),
      b.createSession(newSession(), BOUNDS),
      a.endTurn({ sessionId: session.id, genId, outcome: OUTCOME, turn: undefined }),
      b.budgets.take('k', { limits, take: { requests: 1 }, concurrent: true }),
      a.redeemTicket('t'),
    ];
    for (const call of calls) await expect(call).rejects.toBeInstanceOf(StoreUnavailable);
    await expect(b.loadGeneration(genId)).rejects.toThrow(/unreachable/);
    expect(() => a.appendChunks(genId, chunks(['lost', 'content']))).not.toThrow();
    expect(Date.now() - started).toBeLessThan(500);

    await server.resume();
    const back = Date.now() + 5000;
    while ((a.unavailableReason() !== undefined || b.unavailableReason() !== undefined) && Date.now() < back) {
      await sleep(20);
    }
    expect(a.unavailableReason()).toBeUndefined();
    expect(b.unavailableReason()).toBeUndefined();
    // Redis came back empty (no persistence): the scripts are loaded again as they are used.
    const again = newSession({ system: 'back' });
    expect(await b.createSession(again, BOUNDS)).toBeUndefined();
    expect(await a.loadSession(again.id)).toMatchObject({ chars: 4 });
    expect(await a.budgets.take('k', { limits, take: { requests: 1 }, concurrent: true })).toBeUndefined();
  });
});

const limits: BudgetLimits = { requests: 600, tokens: 100, resumes: 2, concurrent: 3 };
