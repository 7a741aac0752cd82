import type { Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import { CloseCodes } from '../../protocol/index.js';
import { type Answer, chat, collect, openSession, startChat } from '../helpers/conversation.js';
import { startTestServer } from '../helpers/startTestServer.js';
import { TestClient } from '../helpers/TestClient.js';

const STREAMS = 12;
/** Replays of 12 answers of 300 tokens, each merged into a frame: about 16 kB a round. */
const ROUNDS = 50;

/** The TCP socket under a ws client, to stop reading like a frozen browser tab. */
const tcp = (client: TestClient) => (client.socket as unknown as { _socket: Socket })._socket;

/** Finished answers of 300 tokens on one connection, one per session. */
async function answers(client: TestClient): Promise<Answer[]> {
  const sessions = await Promise.all(Array.from({ length: STREAMS }, () => openSession(client)));
  return Promise.all(
    sessions.map(async ({ sessionId }) =>
      collect(client, await startChat(client, sessionId, 'Once upon a time', { maxTokens: 300, temperature: 0 })),
    ),
  );
}

/** While its reader is paused, asks for every answer again, `rounds` times. */
function replayFlood(client: TestClient, done: readonly Answer[], rounds = ROUNDS): void {
  tcp(client).pause();
  for (let round = 0; round < rounds; round++) {
    for (const { genId } of done) client.send({ type: 'generation.resume', id: `r${round}`, genId, afterSeq: 0 });
  }
}

describe('slow consumers', () => {
  it('closes a client that stops reading while 12 generations stream to it with 4429, cancels them, and keeps memory bounded', async () => {
    const harness = await startTestServer({
      maxConcurrent: STREAMS,
      coalesceAboveBytes: 1024,
      resumesPerMinute: 100_000,
      maxBackpressureBytes: 32 * 1024,
    });
    const stuck = await TestClient.connect(harness.wsUrl);
    const done = await answers(stuck);
    // Twelve long generations, one per sequence, streaming when the client freezes.
    const streaming = await Promise.all(
      stuck.frames
        .filter((f) => f.type === 'session.opened')
        .map((f) =>
          f.type === 'session.opened' ? startChat(stuck, f.sessionId, 'And then?', { maxTokens: 1500 }) : '',
        ),
    );
    await Promise.all(streaming.map((genId) => stuck.next('token', (f) => f.genId === genId)));
    const heapBefore = process.memoryUsage().heapUsed;
    // About 8 MB of frames: more than the kernel's socket buffers absorb.
    replayFlood(stuck, done, 500);

    // Every sequence is busy with the frozen client's work: this waits until it is cut off and
    // its generations are cancelled, long before 12 × 1,500 tokens would have been generated.
    const other = await TestClient.connect(harness.wsUrl);
    const { sessionId } = await openSession(other);
    const answer = await chat(other, sessionId, 'The sun', { maxTokens: 20 });
    expect(['stop', 'length']).toContain(answer.done.finish);
    expect(answer.done.timings.queuedMs).toBeLessThan(3000);

    tcp(stuck).resume();
    expect((await stuck.closed).code).toBe(CloseCodes.SlowConsumer.code);
    globalThis.gc?.();
    expect(process.memoryUsage().heapUsed - heapBefore).toBeLessThan(64 * 1024 * 1024);
    await other.close();
    await harness.stop();
  });

  it('delivers every replay in merged frames to a client that reads slowly, ending at the exact seq', async () => {
    const harness = await startTestServer({
      maxConcurrent: STREAMS,
      coalesceAboveBytes: 1024,
      resumesPerMinute: 100_000,
      maxBackpressureBytes: 64 * 1024 * 1024,
    });
    const slow = await TestClient.connect(harness.wsUrl);
    const done = await answers(slow);
    const before = slow.frames.length;
    replayFlood(slow, done);
    tcp(slow).resume();
    await Promise.all(
      done.map(({ genId }) =>
        Promise.all(Array.from({ length: ROUNDS }, () => slow.next('generation.done', (f) => f.genId === genId))),
      ),
    );

    const replayed = slow.frames.slice(before);
    let tokenFrames = 0;
    for (const answer of done) {
      const frames = replayed.flatMap((f) => (f.type === 'token' && f.genId === answer.genId ? [f] : []));
      tokenFrames += frames.length;
      // Held frames of a generation give way to its newest replay, which always arrives whole.
      expect(
        frames
          .map((f) => f.text)
          .join('')
          .endsWith(answer.text),
      ).toBe(true);
      expect(frames.at(-1)?.seq).toBe(answer.done.usage.completionTokens);
    }
    // A replay is one frame per run of a channel, and held frames merge further: never a frame per token.
    expect(tokenFrames).toBeLessThanOrEqual(done.length * ROUNDS);
    await slow.close();
    await harness.stop();
  });
});
