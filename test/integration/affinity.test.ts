import { describe, expect, it } from 'vitest';
import { chat, collect, historyEntryOf, openSession, startChat } from '../helpers/conversation.js';
import { startTestServer } from '../helpers/startTestServer.js';
import { TestClient } from '../helpers/TestClient.js';

describe('KV affinity', () => {
  it("evaluates only a session's new tokens on its next turn", async () => {
    const harness = await startTestServer({ maxConcurrent: 2 });
    const client = await TestClient.connect(harness.wsUrl);
    const { sessionId } = await openSession(client, 'You tell stories.');
    const first = await chat(client, sessionId, 'Tell me about a cat.', { maxTokens: 60, temperature: 0 });
    expect(first.done.usage.cachedPromptTokens).toBeLessThanOrEqual(1);
    const second = await chat(client, sessionId, 'And then?', { maxTokens: 10, temperature: 0 });

    const { promptTokens, cachedPromptTokens } = second.done.usage;
    // Everything up to the end of the first answer was already in the session's sequence.
    expect(cachedPromptTokens).toBeGreaterThanOrEqual(first.done.usage.promptTokens);
    expect(promptTokens - cachedPromptTokens).toBeLessThan(30);
    await client.close();
    await harness.stop();
  });

  it('re-evaluates an evicted session from its stored history without losing any of it', async () => {
    const harness = await startTestServer({ maxConcurrent: 1 });
    const client = await TestClient.connect(harness.wsUrl);
    const a = await openSession(client, 'You tell stories.');
    const b = await openSession(client);
    const firstA = await chat(client, a.sessionId, 'Tell me about a cat.', { maxTokens: 40, temperature: 0 });
    // B takes the only sequence, evicting A's cache.
    await chat(client, b.sessionId, 'A dog ran away.', { maxTokens: 40, temperature: 0 });
    const secondA = await chat(client, a.sessionId, 'And then?', { maxTokens: 10, temperature: 0 });

    expect(secondA.done.usage.cachedPromptTokens).toBeLessThan(firstA.done.usage.promptTokens);
    expect(secondA.done.usage.promptTokens).toBeGreaterThan(
      firstA.done.usage.promptTokens + firstA.done.usage.completionTokens,
    );
    client.send({ type: 'session.open', id: 'again', sessionId: a.sessionId, resumeToken: a.resumeToken });
    const reopened = await client.next('session.opened', (f) => f.id === 'again');
    expect(reopened.history).toEqual([
      { role: 'system', content: 'You tell stories.' },
      { role: 'user', content: 'Tell me about a cat.' },
      historyEntryOf(firstA),
      { role: 'user', content: 'And then?' },
      historyEntryOf(secondA),
    ]);
    await client.close();
    await harness.stop();
  });
});

describe('reusing a sequence while others stream', () => {
  it('starts a new conversation on a used sequence at once, without waiting for the running ones to end', async () => {
    const harness = await startTestServer({ maxConcurrent: 3 });
    const client = await TestClient.connect(harness.wsUrl);
    const [a, b, c, d] = [
      await openSession(client),
      await openSession(client),
      await openSession(client),
      await openSession(client),
    ];
    // Fill all three sequences with some history.
    await Promise.all([a, b, c].map((s) => chat(client, s.sessionId, 'A short story.', { maxTokens: 20 })));

    const longA = startChat(client, a.sessionId, 'Once upon a time', { maxTokens: 1500, temperature: 0 });
    const longB = startChat(client, b.sessionId, 'Once upon a time', { maxTokens: 1500, temperature: 0 });
    const [genA, genB] = await Promise.all([longA, longB]);
    await client.next('token', (f) => f.genId === genA && f.seq >= 10);
    await client.next('token', (f) => f.genId === genB && f.seq >= 10);

    // D is new: it gets C's sequence, whose cache must be erased while A and B keep decoding.
    const quick = await chat(client, d.sessionId, 'The sun', { maxTokens: 5 });
    expect(quick.done.timings.ttftMs).toBeLessThan(1000);
    const [doneA, doneB] = await Promise.all([collect(client, genA), collect(client, genB)]);
    // The long ones were still running when D finished, and were not disturbed.
    expect(doneA.done.finish).toBe('length');
    expect(doneB.done.finish).toBe('length');
    await client.close();
    await harness.stop();
  });
});
