import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROTOCOL_VERSION, ServerFrame } from '../../protocol/index.js';
import { chat, openSession } from '../helpers/conversation.js';
import { expectedBinary } from '../helpers/expectedBinary.js';
import { startTestServer } from '../helpers/startTestServer.js';
import { TestClient } from '../helpers/TestClient.js';

describe('a full turn', () => {
  let harness: Awaited<ReturnType<typeof startTestServer>>;
  beforeAll(async () => {
    harness = await startTestServer();
  });
  afterAll(() => harness.stop());

  it('greets a client with the protocol, model (and the llama.cpp binary it runs on) and limits', async () => {
    const client = await TestClient.connect(harness.wsUrl);
    expect(client.socket.protocol).toBe(PROTOCOL_VERSION);
    expect(client.welcome).toMatchObject({
      protocol: PROTOCOL_VERSION,
      model: { name: 'stories260K', reasoning: false, binary: expectedBinary() },
      // --max-tokens (4096) capped by the tiny model's 2,048-token context.
      limits: { maxFrameBytes: harness.config.maxFrameBytes, maxTokens: 2048 },
    });
    expect(client.welcome.connectionId).toMatch(/^c_/);
    await client.close();
  });

  it('streams queued, started, numbered tokens and done with usage and timings', async () => {
    const client = await TestClient.connect(harness.wsUrl);
    const opened = await openSession(client);
    expect(opened).toMatchObject({ resumed: false, history: [] });

    const answer = await chat(client, opened.sessionId, 'Once upon a time', { maxTokens: 40, temperature: 0 });

    const ofGen = client.frames.filter((f) => 'genId' in f && f.genId === answer.genId).map((f) => f.type);
    expect(ofGen[0]).toBe('generation.queued');
    expect(ofGen[1]).toBe('generation.started');
    expect(ofGen.at(-1)).toBe('generation.done');
    expect(answer.tokens.length).toBeGreaterThan(0);
    const seqs = answer.tokens.map((t) => t.seq);
    expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
    expect(new Set(seqs).size).toBe(seqs.length);
    expect(answer.done.usage.completionTokens).toBe(seqs.at(-1));
    expect(answer.done.usage.promptTokens).toBeGreaterThan(3);
    expect(['stop', 'length']).toContain(answer.done.finish);
    if (answer.done.finish === 'length') expect(answer.done.usage.completionTokens).toBe(40);
    expect(answer.done.timings.ttftMs).toBeGreaterThanOrEqual(0);
    expect(answer.done.timings.totalMs).toBeGreaterThanOrEqual(answer.done.timings.queuedMs);
    expect(answer.text.length).toBeGreaterThan(0);
    for (const frame of client.frames) expect(ServerFrame.safeParse(frame).success).toBe(true);
    await client.close();
  });

  it('gives the same text for the same seed at temperature 0', async () => {
    const client = await TestClient.connect(harness.wsUrl);
    const { sessionId: a } = await openSession(client);
    const { sessionId: b } = await openSession(client);
    const first = await chat(client, a, 'The little dog', { maxTokens: 30, temperature: 0, seed: 7 });
    const second = await chat(client, b, 'The little dog', { maxTokens: 30, temperature: 0, seed: 7 });
    expect(second.text).toBe(first.text);
    await client.close();
  });
});
