import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EchoEngine } from '../doubles/EchoEngine.js';
import { collect, openSession, startChat } from '../helpers/conversation.js';
import { startTestServer } from '../helpers/startTestServer.js';
import { TestClient } from '../helpers/TestClient.js';

const LONG = { maxTokens: 2000, temperature: 0 } as const;

/** The echo double, answering as many tokens as asked, a millisecond apart. */
const echo = (sequences = 4) => ({ engine: new EchoEngine({ tokenDelayMs: 1, answerTokens: 2000, sequences }) });

describe('cancel and disconnect', () => {
  let harness: Awaited<ReturnType<typeof startTestServer>>;
  beforeAll(async () => {
    // One sequence, so a second request must wait for the first to free it.
    harness = await startTestServer({ resumeGraceMs: 0 }, echo(1));
  });
  afterAll(() => harness.stop());

  it('acknowledges a cancel mid stream, ends it as cancelled and starts the next request at once', async () => {
    const a = await TestClient.connect(harness.wsUrl);
    const b = await TestClient.connect(harness.wsUrl);
    const { sessionId: sa } = await openSession(a);
    const { sessionId: sb } = await openSession(b);
    const genA = await startChat(a, sa, 'Once upon a time', LONG);
    await a.next('token', (f) => f.genId === genA);
    const genB = await startChat(b, sb, 'The sun', { maxTokens: 10 });
    expect(b.frames.find((f) => f.type === 'generation.queued' && f.genId === genB)).toMatchObject({ position: 1 });

    a.send({ type: 'generation.cancel', id: 'stop-a', genId: genA });
    const ack = await a.next('cancel.ack', (f) => f.id === 'stop-a');
    const answerA = await collect(a, genA);
    expect(ack).toMatchObject({ genId: genA, status: 'cancelled' });
    expect(ack.completionTokens).toBe(answerA.done.usage.completionTokens);
    expect(answerA.done.finish).toBe('cancelled');
    expect(answerA.done.usage.completionTokens).toBeLessThan(LONG.maxTokens);
    // The ack comes before the done frame, and no token follows the done frame.
    const typesOfA = a.frames.filter((f) => 'genId' in f && f.genId === genA).map((f) => f.type);
    expect(typesOfA.slice(-2)).toEqual(['cancel.ack', 'generation.done']);

    const answerB = await collect(b, genB);
    expect(['stop', 'length']).toContain(answerB.done.finish);
    await Promise.all([a.close(), b.close()]);
  });

  it('takes a queued generation out of the queue at once without disturbing the running one', async () => {
    const client = await TestClient.connect(harness.wsUrl);
    const { sessionId: s1 } = await openSession(client);
    const { sessionId: s2 } = await openSession(client);
    const running = await startChat(client, s1, 'Once upon a time', { maxTokens: 300, temperature: 0 });
    const queued = await startChat(client, s2, 'A frog', { maxTokens: 10 });
    client.send({ type: 'generation.cancel', id: 'stop-queued', genId: queued });
    const ack = await client.next('cancel.ack', (f) => f.id === 'stop-queued');
    expect(ack).toMatchObject({ status: 'cancelled', completionTokens: 0 });
    const queuedDone = await collect(client, queued);
    expect(queuedDone.done).toMatchObject({ finish: 'cancelled', timings: { ttftMs: null } });
    expect(queuedDone.tokens).toEqual([]);
    expect(client.frames.some((f) => f.type === 'generation.started' && f.genId === queued)).toBe(false);

    const runningDone = await collect(client, running);
    expect(['stop', 'length']).toContain(runningDone.done.finish);
    await client.close();
  });

  it('answers not_found for an unknown generation and already_done for a finished one', async () => {
    const client = await TestClient.connect(harness.wsUrl);
    const { sessionId } = await openSession(client);
    const genId = await startChat(client, sessionId, 'Hi', { maxTokens: 3 });
    const done = await collect(client, genId);
    client.send({ type: 'generation.cancel', id: 'late', genId });
    client.send({ type: 'generation.cancel', id: 'unknown', genId: 'g_nope' });
    expect(await client.next('cancel.ack', (f) => f.id === 'late')).toMatchObject({
      status: 'already_done',
      completionTokens: done.done.usage.completionTokens,
    });
    expect(await client.next('cancel.ack', (f) => f.id === 'unknown')).toMatchObject({ status: 'not_found' });
    await client.close();
  });

  it("does not let a connection cancel another connection's generation", async () => {
    const owner = await TestClient.connect(harness.wsUrl);
    const stranger = await TestClient.connect(harness.wsUrl);
    const { sessionId } = await openSession(owner);
    const genId = await startChat(owner, sessionId, 'Once upon a time', { maxTokens: 200, temperature: 0 });
    stranger.send({ type: 'generation.cancel', id: 'steal', genId });
    expect(await stranger.next('cancel.ack', (f) => f.id === 'steal')).toMatchObject({ status: 'not_found' });
    const answer = await collect(owner, genId);
    expect(answer.done.finish).not.toBe('cancelled');
    await Promise.all([owner.close(), stranger.close()]);
  });

  it('with resumeGraceMs 0, cancels the generations of a closed socket and frees the sequence for others', async () => {
    const leaver = await TestClient.connect(harness.wsUrl);
    const waiter = await TestClient.connect(harness.wsUrl);
    const { sessionId: sl } = await openSession(leaver);
    const { sessionId: sw } = await openSession(waiter);
    const genL = await startChat(leaver, sl, 'Once upon a time', LONG);
    await leaver.next('token', (f) => f.genId === genL);
    const genW = await startChat(waiter, sw, 'A tree', { maxTokens: 10 });
    const closedAt = performance.now();
    leaver.socket.terminate();
    await waiter.next('generation.started', (f) => f.genId === genW);
    const waited = performance.now() - closedAt;
    // A 2000-token run takes seconds on this model; a freed sequence starts the waiter far sooner.
    expect(waited).toBeLessThan(1000);
    const answer = await collect(waiter, genW);
    expect(['stop', 'length']).toContain(answer.done.finish);
    await waiter.close();
  });
});
