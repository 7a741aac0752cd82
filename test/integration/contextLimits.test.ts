import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chat, nextId, openSession } from '../helpers/conversation.js';
import { startTestServer } from '../helpers/startTestServer.js';
import { TestClient } from '../helpers/TestClient.js';

/** About 4,000 tokens of the tiny model: twice its 2,048-token context, under --max-message-chars. */
const TOO_BIG = 'Once upon a time there was a big red ball. '.repeat(370);

describe('what does not fit the context', () => {
  let harness: Awaited<ReturnType<typeof startTestServer>>;
  let client: TestClient;
  let openai: OpenAI;
  beforeAll(async () => {
    harness = await startTestServer();
    client = await TestClient.connect(harness.wsUrl);
    openai = new OpenAI({ apiKey: 'unused', baseURL: `${harness.httpUrl}/v1`, maxRetries: 0 });
  });
  afterAll(async () => {
    await client.close();
    await harness.stop();
  });

  it('ends a chat.send whose lone message cannot fit with context_overflow, never an answer to nothing', async () => {
    for (const system of [undefined, 'You are a storyteller.']) {
      const { sessionId } = await openSession(client, system);
      const answer = await chat(client, sessionId, TOO_BIG, { maxTokens: 16 });
      expect(answer.done).toMatchObject({ finish: 'error', error: { code: 'context_overflow' } });
      expect(answer.done.error?.message).toMatch(/newest message needs .* prompt tokens/);
      expect(answer.tokens).toEqual([]);
    }
  });

  it('keeps a long conversation going by dropping its oldest turns, never the newest', async () => {
    const { sessionId } = await openSession(client, 'Tell stories.');
    for (let turn = 0; turn < 4; turn++) {
      const answer = await chat(client, sessionId, TOO_BIG.slice(0, 2500), { maxTokens: 8, temperature: 0 });
      expect(answer.done.finish).toBe('length');
      expect(answer.done.usage.promptTokens).toBeGreaterThan(500);
      expect(answer.done.usage.promptTokens).toBeLessThanOrEqual(2048 - 8);
    }
  });

  it('answers HTTP chat completions and completions whose prompt cannot fit with 400 context_overflow', async () => {
    await expect(
      openai.chat.completions.create({ model: 'stories260K', messages: [{ role: 'user', content: TOO_BIG }] }),
    ).rejects.toMatchObject({ status: 400, code: 'context_overflow' });
    await expect(
      openai.chat.completions.create({
        model: 'stories260K',
        messages: [
          { role: 'system', content: 'Be brief.' },
          { role: 'user', content: TOO_BIG },
        ],
        stream: true,
      }),
    ).rejects.toMatchObject({ status: 400, code: 'context_overflow' });
    await expect(openai.completions.create({ model: 'stories260K', prompt: TOO_BIG })).rejects.toMatchObject({
      status: 400,
      code: 'context_overflow',
    });
  });

  it('refuses maxTokens beyond the context size, and says so in welcome', async () => {
    expect(client.welcome.limits.maxTokens).toBe(2048);
    const { sessionId } = await openSession(client);
    const id = nextId('big');
    client.send({ type: 'chat.send', id, sessionId, content: 'Hi', params: { maxTokens: 4096 } });
    const error = await client.next('error', (f) => f.id === id);
    expect(error).toMatchObject({ code: 'bad_frame' });
    expect(error.message).toMatch(/at most 2048/);
    await expect(
      openai.chat.completions.create({
        model: 'stories260K',
        messages: [{ role: 'user', content: 'Hi' }],
        max_tokens: 4096,
      }),
    ).rejects.toMatchObject({ status: 400, code: 'bad_frame' });
  });

  it('ends an answer with finish length when prompt and answer fill the context', async () => {
    const { sessionId } = await openSession(client);
    const prompt = TOO_BIG.slice(0, 4400);
    const answer = await chat(client, sessionId, prompt, { maxTokens: 2048, temperature: 0 });
    expect(answer.done.finish).toBe('length');
    const { promptTokens, completionTokens } = answer.done.usage;
    expect(promptTokens + completionTokens).toBeLessThanOrEqual(2048);
    expect(promptTokens + completionTokens).toBeGreaterThan(2000);
    expect(promptTokens).toBeGreaterThan(1000);
  });
});
