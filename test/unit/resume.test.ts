import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Token } from '../../protocol/index.js';
import { EchoEngine } from '../doubles/EchoEngine.js';
import { chat, collect, openSession, startChat } from '../helpers/conversation.js';
import { startTestServer } from '../helpers/startTestServer.js';
import { TestClient } from '../helpers/TestClient.js';

const PARAMS = { maxTokens: 400, temperature: 0, seed: 42 } as const;

/** The echo double, answering as many tokens as asked, a millisecond apart. */
const echo = (sequences = 4) => ({ engine: new EchoEngine({ tokenDelayMs: 1, answerTokens: 2000, sequences }) });

describe('resume after a dropped connection', () => {
  let harness: Awaited<ReturnType<typeof startTestServer>>;
  beforeAll(async () => {
    harness = await startTestServer({ resumeGraceMs: 15_000 }, echo());
  });
  afterAll(() => harness.stop());

  it('replays exactly the missed frames, then streams live: the text equals an uninterrupted run', async () => {
    const reference = await TestClient.connect(harness.wsUrl);
    const { sessionId: refSession } = await openSession(reference);
    const uninterrupted = await chat(reference, refSession, 'Once upon a time', PARAMS);
    await reference.close();

    const first = await TestClient.connect(harness.wsUrl);
    const opened = await openSession(first);
    const genId = await startChat(first, opened.sessionId, 'Once upon a time', PARAMS);
    await first.next('token', (f) => f.genId === genId && f.seq >= 5);
    first.socket.terminate();
    await first.closed;
    const received = first.frames.filter((f): f is Token => f.type === 'token' && f.genId === genId);
    const afterSeq = received.at(-1)?.seq ?? 0;

    const second = await TestClient.connect(harness.wsUrl);
    second.send({ type: 'session.open', id: 'back', sessionId: opened.sessionId, resumeToken: opened.resumeToken });
    await second.next('session.opened', (f) => f.id === 'back');
    second.send({ type: 'generation.resume', id: 'resume', genId, afterSeq });
    const rest = await collect(second, genId);

    const seqs = [...received, ...rest.tokens].map((t) => t.seq);
    expect(new Set(seqs).size).toBe(seqs.length);
    expect(rest.tokens[0]?.seq).toBeGreaterThan(afterSeq);
    const text = received.map((t) => t.text).join('') + rest.text;
    expect(text).toBe(uninterrupted.text);
    expect(rest.done.usage.completionTokens).toBe(uninterrupted.done.usage.completionTokens);
    await second.close();
  });

  it('replays a whole generation from seq 0 after a reconnect, ending with its done frame', async () => {
    const first = await TestClient.connect(harness.wsUrl);
    const opened = await openSession(first);
    const genId = await startChat(first, opened.sessionId, 'The cat', { maxTokens: 30, temperature: 0 });
    first.socket.terminate();

    const second = await TestClient.connect(harness.wsUrl);
    second.send({ type: 'session.open', id: 'back', sessionId: opened.sessionId, resumeToken: opened.resumeToken });
    await second.next('session.opened', (f) => f.id === 'back');
    second.send({ type: 'generation.resume', id: 'replay', genId, afterSeq: 0 });
    const replay = await collect(second, genId);
    expect(['stop', 'length']).toContain(replay.done.finish);
    const seqs = replay.tokens.map((t) => t.seq);
    expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
    expect(seqs.at(-1)).toBe(replay.done.usage.completionTokens);
    await second.close();
  });
});

describe('resume grace period', () => {
  it('cancels an abandoned generation after the grace period, frees its sequence, and replays it, cancelled, to a late resume', async () => {
    const harness = await startTestServer({ resumeGraceMs: 300 }, echo(1));
    const leaver = await TestClient.connect(harness.wsUrl);
    const opened = await openSession(leaver);
    const genId = await startChat(leaver, opened.sessionId, 'Once upon a time', { maxTokens: 2000, temperature: 0 });
    await leaver.next('token', (f) => f.genId === genId);
    leaver.socket.terminate();

    const waiter = await TestClient.connect(harness.wsUrl);
    const { sessionId } = await openSession(waiter);
    const waiting = await startChat(waiter, sessionId, 'A tree', { maxTokens: 5 });
    const started = await waiter.next('generation.started', (f) => f.genId === waiting, 5_000);
    expect(started.genId).toBe(waiting);
    await collect(waiter, waiting);

    const late = await TestClient.connect(harness.wsUrl);
    late.send({ type: 'session.open', id: 'back', sessionId: opened.sessionId, resumeToken: opened.resumeToken });
    const reopened = await late.next('session.opened', (f) => f.id === 'back');
    // The cancelled turn's partial answer is kept in the history.
    expect(reopened.history.map((m) => m.role)).toEqual(['user', 'assistant']);
    // The store kept its transcript: a late resume gets what it streamed, then its end.
    late.send({ type: 'generation.resume', id: 'late', genId, afterSeq: 0 });
    const done = await late.next('generation.done', (f) => f.genId === genId);
    expect(done.finish).toBe('cancelled');
    const replayed = late.frames.filter((f) => f.type === 'token' && f.genId === genId);
    expect(replayed.map((f) => (f.type === 'token' ? f.text : '')).join('')).toBe(reopened.history[1]?.content);
    await Promise.all([waiter.close(), late.close()]);
    await harness.stop();
  });
});

describe('resume budget', () => {
  it('replays a finished answer as one merged frame, and refuses resumes past --resumes-per-minute', async () => {
    const harness = await startTestServer({ resumesPerMinute: 3 }, echo());
    const client = await TestClient.connect(harness.wsUrl);
    const { sessionId } = await openSession(client);
    const answer = await chat(client, sessionId, 'Once upon a time', { maxTokens: 200, temperature: 0 });
    for (let attempt = 0; attempt < 3; attempt++) {
      const before = client.frames.length;
      client.send({ type: 'generation.resume', id: `again-${attempt}`, genId: answer.genId, afterSeq: 0 });
      await client.next('generation.done', (f) => f.genId === answer.genId);
      const replayed = client.frames.slice(before).filter((f): f is Token => f.type === 'token');
      expect(replayed).toEqual([
        {
          type: 'token',
          genId: answer.genId,
          seq: answer.done.usage.completionTokens,
          text: answer.text,
          channel: 'content',
        },
      ]);
    }
    client.send({ type: 'generation.resume', id: 'one-too-many', genId: answer.genId, afterSeq: 0 });
    const refused = await client.next('error', (f) => f.id === 'one-too-many');
    expect(refused).toMatchObject({ code: 'rate_limited', retryable: true });
    expect(refused.retryAfterMs).toBeGreaterThan(10_000);
    expect(refused.message).toMatch(/3 resumes per minute/);
    await client.close();
    await harness.stop();
  });
});
