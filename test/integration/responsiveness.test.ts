import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Token } from '../../protocol/index.js';
import { chat, collect, openSession, startChat } from '../helpers/conversation.js';
import { startTestServer } from '../helpers/startTestServer.js';
import { TestClient } from '../helpers/TestClient.js';

describe('one client cannot stall another', () => {
  let harness: Awaited<ReturnType<typeof startTestServer>>;
  beforeAll(async () => {
    harness = await startTestServer();
  });
  afterAll(() => harness.stop());

  it("keeps a bystander's tokens coming while another client's long prompt is evaluated", async () => {
    const bystander = await TestClient.connect(harness.wsUrl);
    const attacker = await TestClient.connect(harness.wsUrl);
    const { sessionId } = await openSession(bystander);
    const longPrompt = await openSession(attacker, 'Once upon a time there was a big red ball. '.repeat(140));
    const genId = await startChat(bystander, sessionId, 'Once upon a time', { maxTokens: 600, temperature: 0 });
    await bystander.next('token', (f) => f.genId === genId && f.seq >= 20);
    // About 1,600 prompt tokens: evaluated in one go, they held every other stream for seconds.
    const attack = await chat(attacker, longPrompt.sessionId, 'And then?', { maxTokens: 1 });
    expect(attack.done.usage.promptTokens).toBeGreaterThan(1500);
    const answer = await collect(bystander, genId);
    const arrivals = bystander.frames.filter((f): f is Token => f.type === 'token' && f.genId === genId);
    expect(arrivals.length).toBe(answer.tokens.length);
    const worstGapMs = Math.max(...gapsOf(bystander, genId));
    expect(worstGapMs).toBeLessThan(750);
    await Promise.all([bystander.close(), attacker.close()]);
  });
});

/** Milliseconds between the token frames of a generation, as the client received them. */
function gapsOf(client: TestClient, genId: string): number[] {
  const times = client.times.filter((_, index) => {
    const frame = client.frames[index];
    return frame?.type === 'token' && frame.genId === genId;
  });
  return times.slice(1).map((at, index) => at - (times[index] ?? at));
}
