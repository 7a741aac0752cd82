import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROTOCOL_VERSION } from '../../protocol/index.js';
import { EchoEngine } from '../doubles/EchoEngine.js';
import { chat, openSession } from '../helpers/conversation.js';
import { startTestServer } from '../helpers/startTestServer.js';
import { TestClient } from '../helpers/TestClient.js';

/** A small deterministic PRNG, so a failure can be replayed. */
function random(seed: number) {
  let state = seed >>> 0;
  return () => {
    state = (state * 1664525 + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
}

const VALID = [
  { type: 'session.open', id: 'a', system: 'x' },
  { type: 'chat.send', id: 'b', sessionId: 's_x', content: 'hi', params: { maxTokens: 3 } },
  { type: 'generation.cancel', id: 'c', genId: 'g_x' },
  { type: 'generation.resume', id: 'd', genId: 'g_x', afterSeq: 0 },
  { type: 'ping', id: 'e' },
];
const ODD_VALUES: unknown[] = [
  null,
  true,
  -1,
  1e308,
  Number.NaN,
  '',
  'x'.repeat(5000),
  [],
  {},
  [[[[[]]]]],
  { type: 'ping' },
];

/**
 * One hostile frame: random binary, broken JSON, deep nesting, invalid UTF-8 in a text frame, or a
 * valid frame with a field mutated.
 */
function hostileFrame(next: () => number, invalidUtf8: boolean): { data: string | Buffer; binary: boolean } {
  let frame = hostileData(next);
  while (!invalidUtf8 && Buffer.isBuffer(frame) && frame[0] === 0x7b) frame = hostileData(next);
  return { data: frame, binary: Buffer.isBuffer(frame) && frame[0] !== 0x7b };
}

function hostileData(next: () => number): string | Buffer {
  const pick = <T>(items: readonly T[]): T => items[Math.floor(next() * items.length)] as T;
  switch (Math.floor(next() * 6)) {
    case 0:
      return Buffer.from([0x00, ...Array.from({ length: Math.floor(next() * 200) }, () => Math.floor(next() * 256))]);
    case 1:
      return JSON.stringify(pick(VALID)).slice(0, Math.floor(next() * 40));
    case 2:
      return `${'['.repeat(2000)}${']'.repeat(2000)}`;
    case 3:
      // Starts with '{' and is sent as text: invalid UTF-8 inside a text frame.
      return Buffer.from([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x3a, 0x31, 0x7d]);
    default: {
      const frame: Record<string, unknown> = { ...pick(VALID) };
      const key = pick([...Object.keys(frame), 'params', 'extra', '__proto__']);
      frame[key] = pick(ODD_VALUES);
      return JSON.stringify(frame);
    }
  }
}

describe('fuzzing', () => {
  let harness: Awaited<ReturnType<typeof startTestServer>>;
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown) => unhandled.push(reason);
  beforeAll(async () => {
    process.on('unhandledRejection', onUnhandled);
    // A generous bad-frame budget, so that the attackers keep talking instead of being cut off.
    harness = await startTestServer({ maxBadFrames: 100_000 }, { engine: new EchoEngine() });
  });
  afterAll(async () => {
    await harness.stop();
    process.off('unhandledRejection', onUnhandled);
  });

  it('survives thousands of random and mutated frames from several connections while a conversation completes', async () => {
    const good = await TestClient.connect(harness.wsUrl);
    const { sessionId } = await openSession(good);
    const heapBefore = process.memoryUsage().heapUsed;

    const attackers = await Promise.all(Array.from({ length: 4 }, () => TestClient.connect(harness.wsUrl)));
    const conversation = (async () => {
      const answers = [];
      for (const content of ['Once upon a time', 'What next?', 'The end?'])
        answers.push(await chat(good, sessionId, content, { maxTokens: 30 }));
      return answers;
    })();
    let sent = 0;
    for (const [index, attacker] of attackers.entries()) {
      const next = random(1000 + index);
      for (let i = 0; i < 1500; i++) {
        // Only the last attacker breaks UTF-8: the socket layer cuts it off at once.
        const { data, binary } = hostileFrame(next, index === attackers.length - 1);
        attacker.sendRaw(data, binary);
        sent += 1;
      }
    }
    const answers = await conversation;
    for (const answer of answers) expect(['stop', 'length']).toContain(answer.done.finish);
    expect(sent).toBe(6000);

    // A text frame that is not UTF-8 breaks RFC 6455: uWebSockets.js drops that connection.
    const breaker = attackers.at(-1) as TestClient;
    expect((await breaker.closed).code).toBe(1006);
    // Every other attacker still gets answers, and got an error frame for its garbage.
    for (const attacker of attackers.slice(0, -1)) {
      attacker.send({ type: 'ping', id: 'still-there' });
      await attacker.next('pong', (f) => f.id === 'still-there');
      expect(attacker.frames.some((f) => f.type === 'error')).toBe(true);
    }
    await Promise.all(attackers.map((attacker) => attacker.close()));
    await good.close();
    expect(unhandled).toEqual([]);

    const fresh = await TestClient.connect(harness.wsUrl, [PROTOCOL_VERSION]);
    await fresh.close();
    expect(globalThis.gc).toBeTypeOf('function');
    globalThis.gc?.();
    expect(process.memoryUsage().heapUsed - heapBefore).toBeLessThan(32 * 1024 * 1024);
  });
});
