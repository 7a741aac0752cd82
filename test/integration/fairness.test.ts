import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { collect, openSession, startChat } from '../helpers/conversation.js';
import { startTestServer } from '../helpers/startTestServer.js';
import { TestClient } from '../helpers/TestClient.js';

describe('fairness and honest backpressure', () => {
  let harness: Awaited<ReturnType<typeof startTestServer>>;
  beforeAll(async () => {
    harness = await startTestServer({ maxConcurrent: 1, maxQueued: 6, maxQueuedPerClient: 4, resumeGraceMs: 0 });
  });
  afterAll(() => harness.stop());

  it('serves a quiet client right after the running request, ahead of a flooding client', async () => {
    const flooder = await TestClient.connect(harness.wsUrl);
    const quiet = await TestClient.connect(harness.wsUrl);
    const floods: string[] = [];
    for (let i = 0; i < 5; i++) {
      const { sessionId } = await openSession(flooder);
      floods.push(await startChat(flooder, sessionId, 'Once upon a time', { maxTokens: 40 }));
    }
    const { sessionId } = await openSession(quiet);
    const mine = await startChat(quiet, sessionId, 'The sun', { maxTokens: 10 });
    expect(quiet.frames.find((f) => f.type === 'generation.queued' && f.genId === mine)).toMatchObject({ position: 1 });

    const quietStarted = quiet.next('generation.started', (f) => f.genId === mine).then(() => performance.now());
    const secondFloodStarted = flooder
      .next('generation.started', (f) => f.genId === floods[1])
      .then(() => performance.now());
    expect(await quietStarted).toBeLessThan(await secondFloodStarted);

    await Promise.all([collect(quiet, mine), ...floods.map((genId) => collect(flooder, genId))]);
    // The flooder's last request was told its place (4), moved back when the quiet client went
    // ahead of it (5), and was told again each time it moved up.
    const positions = flooder.frames
      .filter((f) => f.type === 'generation.queued' && f.genId === floods[4])
      .map((f) => (f.type === 'generation.queued' ? f.position : -1));
    expect(positions.slice(0, 2)).toEqual([4, 5]);
    expect(positions.slice(1)).toEqual([5, 4, 3, 2, 1]);
    await Promise.all([flooder.close(), quiet.close()]);
  });

  it('refuses past the per-client and global queue bounds with queue_full and retryAfterMs', async () => {
    const client = await TestClient.connect(harness.wsUrl);
    const other = await TestClient.connect(harness.wsUrl);
    const genIds: string[] = [];
    for (let i = 0; i < 5; i++) {
      const { sessionId } = await openSession(client);
      genIds.push(await startChat(client, sessionId, 'Once upon a time', { maxTokens: 30 }));
    }
    const { sessionId } = await openSession(client);
    client.send({ type: 'chat.send', id: 'one-too-many', sessionId, content: 'Hi' });
    const mine = await client.next('error', (f) => f.id === 'one-too-many');
    expect(mine).toMatchObject({ code: 'queue_full', retryable: true });
    expect(mine.retryAfterMs).toBeGreaterThan(0);

    const others: string[] = [];
    for (let i = 0; i < 2; i++) {
      const opened = await openSession(other);
      others.push(await startChat(other, opened.sessionId, 'The sun', { maxTokens: 5 }));
    }
    const { sessionId: full } = await openSession(other);
    other.send({ type: 'chat.send', id: 'global-full', sessionId: full, content: 'Hi' });
    expect(await other.next('error', (f) => f.id === 'global-full')).toMatchObject({ code: 'queue_full' });
    await Promise.all([...genIds.map((g) => collect(client, g)), ...others.map((g) => collect(other, g))]);
    await Promise.all([client.close(), other.close()]);
  });

  it('ends a generation that runs past maxGenerationMs with finish timeout', async () => {
    const short = await startTestServer({ maxGenerationMs: 150 });
    const client = await TestClient.connect(short.wsUrl);
    const { sessionId } = await openSession(client);
    const answer = await collect(
      client,
      await startChat(client, sessionId, 'Once upon a time', { maxTokens: 2000, temperature: 0 }),
    );
    expect(answer.done.finish).toBe('timeout');
    expect(answer.done.usage.completionTokens).toBeGreaterThan(0);
    expect(answer.done.usage.completionTokens).toBeLessThan(4000);
    await client.close();
    await short.stop();
  });
});
